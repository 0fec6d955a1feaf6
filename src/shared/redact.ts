// Endpoints are the one value that is printed (denials, warnings, logs) and may carry a
// credential: `https://KEY:SECRET@host` or the typo `s3://KEY:SECRET@host`. Everything
// before the last "@" of the authority is the userinfo, whatever the scheme.
const MARK = '***';

/** One endpoint value, scheme or not: `KEY:SECRET@host:9000` becomes `***@host:9000`. */
export function redactEndpoint(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[\s\S]*@/i, (_match, scheme: string | undefined) => `${scheme ?? ''}${MARK}@`);
}

/**
 * Free text (log lines, SDK errors): the userinfo of every `scheme://...@` URL in it, up
 * to the URL's last "@" (a secret key may hold "/" or "@"). URLs without an authority
 * (`file:///.../node_modules/@scope/...` in stack traces) are left alone.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)(?!\/)[^\s"'`<>]*@/gi, `$1${MARK}@`);
}
