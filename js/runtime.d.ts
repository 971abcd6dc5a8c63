// Types of the lowcode-faas handler contract (docs/api.md).
//
//   /** @type {import('./runtime').Handler} */
//   export async function handler(input, context) {
//     return { ok: true, data: { hello: input.name } };
//   }

/** Any value JSON can carry. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** The invoke request's `input`: always a JSON object (`{}` when absent). */
export interface HandlerInput {
  [key: string]: JsonValue;
}

/** Facts about the current run. The object is frozen. */
export interface HandlerContext {
  /** `run-` followed by a unique id. */
  readonly runId: string;
  /** Equals `runId`. */
  readonly executionId: string;
  /** The function's name. */
  readonly functionName: string;
  /** The function's collection path, `""` for the root collection. */
  readonly collectionPath: string;
  /** `name@vN` or `collection/path/name@vN`. */
  readonly deploymentId: string;
  /** The version that runs (N in the deployment id). */
  readonly deploymentVersion: number;
}

/** A successful result; `data` is returned to the caller as is. */
export interface HandlerSuccess {
  ok: true;
  data?: unknown;
}

/**
 * A business failure. The run still counts as a success of the platform
 * (`status: "success"`); the caller receives this object as `output`.
 */
export interface HandlerFailure {
  ok: false;
  error: string;
  code?: string;
}

/**
 * What a handler returns. It must survive `JSON.stringify` (no cycles, no
 * BigInt) and be an object with a boolean `ok`; anything else fails the run
 * with `BAD_RETURN`. The platform checks only `ok` (as the Go version did):
 * an `ok:false` without a string `error`, or with a numeric `code`, is still
 * a business failure returned exactly, but new code should use
 * `HandlerFailure`.
 */
export type HandlerOutput = HandlerSuccess | HandlerFailure;

/**
 * The function's `handler` export. A throw or a rejection fails the run with
 * `HANDLER_THROW`.
 */
export type Handler = (
  input: HandlerInput,
  context: HandlerContext,
) => Promise<HandlerOutput> | HandlerOutput;
