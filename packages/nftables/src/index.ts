export { NftRunner, NftError, type NftRunnerOptions } from "./runner.js";
export { libnftablesUnavailableReason } from "./addon.js";
