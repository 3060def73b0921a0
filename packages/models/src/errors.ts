import type { ErrorCode } from "@vigil/errors";

/** A model document (a detector's export or a saved model file) that cannot be read: the message names the field. */
export class ModelError extends Error {
  readonly code: ErrorCode = "VIGIL_ERR_MODEL";
}
