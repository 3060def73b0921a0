/** Thrown for a non-2xx answer; carries the server's error text. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    /** With VIGIL_ERR_LOCKOUT: whether the rule may be sent again with force. */
    readonly forceable = false,
  ) {
    super(message);
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (method !== "GET") headers["x-vigil-console"] = "1";
  if (body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  } catch (err) {
    // The browser says only "Failed to fetch": what failed is reaching the console server.
    throw new ApiError(`the console server is not answering (${method} ${path}: ${(err as Error).message})`, 0, "");
  }
  if (res.status === 401) {
    location.reload();
    throw new ApiError("signed out", 401, "VIGIL_ERR_UNAUTHORIZED");
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(data?.error ?? `${method} ${path}: HTTP ${res.status}`, res.status, data?.code ?? "", data?.forceable === true);
  return data as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body: unknown = {}) => request<T>("POST", path, body),
  del: <T>(path: string) => request<T>("DELETE", path),
};

export interface Verdict {
  id: string;
  detector: string;
  instance?: string;
  sourceId?: string;
  address?: string;
  aggregate?: boolean;
  localAddress?: string;
  localPorts?: number[];
  protocol?: number;
  score: number;
  threshold: number;
  model?: string;
  label?: string;
  connections?: number;
  packets?: number;
  firstTs?: number;
  lastTs?: number;
  summary?: string;
  pst?: { connections?: ConnectionEvidence[] };
  som?: SomEvidence;
}
export interface ConnectionEvidence {
  client?: string;
  clientPort?: number;
  server?: string;
  serverPort?: number;
  serviceClass?: string;
  symbols?: string;
  score?: number;
  firstTs?: number;
  lastTs?: number;
}
export interface FeatureValue {
  name: string;
  value?: number;
  deviation?: number;
}
export interface SomEvidence {
  features?: FeatureValue[];
  deviations?: FeatureValue[];
  sources?: { address: string; share?: number; packets?: number; ports?: number; halfOpen?: number; fragments?: number }[];
  bmu?: number;
  quantizationError?: number;
  windowStart?: number;
  windowEnd?: number;
  windowPackets?: number;
}
export interface VerdictEntry {
  verdict: Verdict;
  outcome: string;
  ruleId: number;
  receivedAt: number;
}
export interface Rule {
  id: number;
  action?: string;
  srcCidr?: string;
  dstCidr?: string;
  protocol?: number;
  dportMin?: number;
  dportMax?: number;
  direction?: string;
  priority?: number;
  origin?: string;
  reason?: string;
  detector?: string;
  verdictIds?: string[];
  createdBy?: string;
  createdAt?: number;
  expiresAt?: number;
  offences?: number;
  hits?: number;
  bytes?: number;
  enforced?: boolean;
}
export type {
  InstanceHealth,
  ModelDocument,
  Overview,
  PstModelView,
  PstNode,
  RulesState,
  RulesStatus,
  ScorePoint,
  SeriesPoint,
  SomModelView,
  Tick,
} from "../../src/wire.js";
