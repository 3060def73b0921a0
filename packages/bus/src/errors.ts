export class BusError extends Error {
  readonly code = "VIGIL_ERR_BUS";
}
