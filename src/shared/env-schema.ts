import type * as z from 'zod';

/**
 * Validates the variables a zod object schema names, reading only those (empty counts as
 * unset, so defaults apply), and reports every problem in one line prefixed by `what`,
 * because a container's termination message shows one line.
 */
export function parseEnvSchema<Shape extends z.ZodRawShape>(
  schema: z.ZodObject<Shape>,
  env: NodeJS.ProcessEnv,
  what: string,
  makeError: (message: string) => Error,
): z.infer<z.ZodObject<Shape>> {
  const known = Object.fromEntries(
    Object.keys(schema.shape).flatMap((key) => {
      const value = env[key];
      return value === undefined || value === '' ? [] : [[key, value]];
    }),
  );
  const parsed = schema.safeParse(known);
  if (!parsed.success) {
    // Messages shared with the agent already start with the variable's name.
    const problems = parsed.error.issues.map((issue) => {
      const key = issue.path.join('.');
      return issue.message.startsWith(`${key} `) ? issue.message : `${key}: ${issue.message}`;
    });
    throw makeError(`invalid ${what}: ${problems.join('; ')}`);
  }
  return parsed.data;
}
