export { errorCatalog, isErrorCode, type ErrorCode, type ErrorEntry } from "./catalog.js";
