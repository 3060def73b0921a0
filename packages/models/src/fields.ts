import { ModelError } from "./errors.js";

/** Field readers shared by the export parsers: each failure names the field (`where`). */
export type Json = Record<string, unknown>;
export const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
export const num = (v: unknown, where: string): number => {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  throw new ModelError(`${where}: expected a finite number, got ${JSON.stringify(v)?.slice(0, 40)}`);
};
export const optNum = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
export const str = (v: unknown): string => (typeof v === "string" ? v : typeof v === "number" ? String(v) : "");
