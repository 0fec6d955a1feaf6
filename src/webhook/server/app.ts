import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../../shared/logger.js';
import type { AdmissionDeps } from '../admission/admission.js';
import type { WebhookMetrics } from './metrics.js';
import { BadReview, reviewAdmission, reviewJson } from '../admission/review.js';
import { isPlainJson, readReviewBody } from './review-body.js';

export interface AppOptions {
  deps: AdmissionDeps;
  metrics: WebhookMetrics;
  logger: Logger;
  bodyLimit: string;
  /** TLS material loaded and secret cache synced */
  ready: () => boolean;
}

/** The admission surface: POST /mutate, /healthz, /readyz. Transport only. */
export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');

  addHealth(app, options.ready);

  const answers = new ReviewAnswers(options);
  const parseJson = express.json({ limit: options.bodyLimit, strict: true, type: () => true });
  app.post('/mutate', (req, res, next) => {
    const started = process.hrtime.bigint();
    res.locals.started = started;
    const answered = (body: unknown) => answers.answer(body, res, started).catch(next);
    if (isPlainJson(req)) {
      readReviewBody(req, options.bodyLimit).then(answered, next);
      return;
    }
    if (!req.is('application/json')) {
      const type = req.get('content-type') ?? '';
      answers.reject(res, 415, 'unsupported-media-type', `unsupported content type "${type}": expected application/json`, started);
      return;
    }
    // The content type was checked just above; `type` skips body-parser parsing it again.
    parseJson(req, res, (error?: unknown) => (error ? next(error) : void answered(req.body)));
  });

  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => answers.failed(error, res, next));

  return app;
}

/** Every answer /mutate gives: the review's, a rejection, or an internal error; each counted and logged. */
class ReviewAnswers {
  constructor(private readonly options: AppOptions) {}

  async answer(body: unknown, res: Response, started: bigint): Promise<void> {
    const { metrics, logger } = this.options;
    try {
      const review = await reviewAdmission(body, this.options.deps);
      metrics.reviews.inc({ outcome: review.outcome, reason: review.reason });
      metrics.latency.observe({ outcome: review.outcome }, seconds(started));
      logger.info(
        {
          uid: review.uid,
          namespace: review.namespace,
          pod: review.podName,
          outcome: review.outcome,
          reason: review.reason,
          ...(review.warnings.length > 0 ? { warnings: review.warnings } : {}),
          ...(review.message ? { denial: review.message } : {}),
          ms: Math.round(seconds(started) * 100_000) / 100,
        },
        'admission decision',
      );
      // The bytes res.json would send, written with the headers in one go: no ETag (a
      // SHA-1 of every answer nobody revalidates) and no second TLS record.
      const json = reviewJson(review.response);
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json) });
      res.end(json);
    } catch (error) {
      if (error instanceof BadReview) {
        this.reject(res, 400, 'malformed-review', error.message, started, error.uid);
        return;
      }
      throw error;
    }
  }

  reject(res: Response, code: number, reason: string, message: string, started: bigint, uid?: string): void {
    const { metrics, logger } = this.options;
    metrics.reviews.inc({ outcome: 'rejected', reason });
    metrics.latency.observe({ outcome: 'rejected' }, seconds(started));
    logger.warn({ outcome: 'rejected', reason, code, ...(uid === undefined ? {} : { uid }) }, message);
    res.status(code).type('text/plain').send(`${message}\n`);
  }

  // body-parser's errors carry the HTTP status they stand for.
  failed(error: unknown, res: Response, next: NextFunction): void {
    if (res.headersSent) {
      next(error);
      return;
    }
    const started = (res.locals.started as bigint | undefined) ?? process.hrtime.bigint();
    const parserError = error as { type?: string; status?: number; limit?: number };
    if (parserError.type === 'entity.too.large') {
      this.reject(res, 413, 'too-large', `request body exceeds the ${this.options.bodyLimit} limit`, started);
    } else if (parserError.type === 'entity.parse.failed') {
      this.reject(res, 400, 'malformed-review', 'malformed AdmissionReview: body is not valid JSON', started);
    } else if (parserError.status !== undefined && parserError.status >= 400 && parserError.status < 500) {
      this.reject(res, parserError.status, 'bad-request', (error as Error).message, started);
    } else {
      this.options.logger.error({ err: error }, 'unexpected error answering a review');
      this.options.metrics.reviews.inc({ outcome: 'rejected', reason: 'internal-error' });
      res.status(500).type('text/plain').send('internal error\n');
    }
  }
}

function seconds(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/**
 * GET /metrics, served on its own port so that port can be opened to monitoring alone
 * while the admission port must stay open to wherever the API server calls from.
 */
// Health is served here too, in plain HTTP: the kubelet probes this port, so a replica
// still waiting for its first certificate is not-ready but alive instead of failing its
// liveness probe on a TLS handshake and being restarted over and over.
export function createMetricsApp(metrics: WebhookMetrics, ready: () => boolean): express.Express {
  const app = express();
  app.disable('x-powered-by');
  addHealth(app, ready);
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return app;
}

function addHealth(app: express.Express, ready: () => boolean): void {
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.get('/readyz', (_req, res) => {
    const isReady = ready();
    res.status(isReady ? 200 : 503).type('text/plain').send(isReady ? 'ready' : 'not ready');
  });
}
