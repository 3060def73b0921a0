/** A request or configuration value is invalid; `field` names it (e.g. "rule.src_cidr"). */
export class InvalidArgumentError extends Error {
  readonly code = "VIGIL_ERR_INVALID_ARGUMENT";
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

export class NotFoundError extends Error {
  readonly code = "VIGIL_ERR_NOT_FOUND";
}
