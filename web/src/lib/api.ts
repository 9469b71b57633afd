// The one client of the gateway's API: JSON in and out, the bearer token
// from the session, every failure thrown as a ProblemError.
import type { ApiPath } from "./api-types";
import { ProblemError, problemFromResponse, toProblem } from "./problem";
import { session } from "./session";

export const API_BASE = "/api/v1";

type Method = "GET" | "POST" | "PATCH" | "DELETE";

// A path of the contract with its `{params}` filled in: "/api/v1/conversations/{id}" → `/conversations/${string}`.
type Fill<S extends string> = S extends `${infer A}{${string}}${infer B}` ? `${A}${string}${Fill<B>}` : S;
type Stripped<P> = P extends `/api/v1${infer R}` ? R : never;
export type Route = Fill<Stripped<ApiPath>>;

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined | null>;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export function url(path: Route | string, query?: RequestOptions["query"]): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null) params.set(k, String(v));
  }
  const qs = params.toString();
  return `${API_BASE}${path}${qs ? `?${qs}` : ""}`;
}

export function authHeaders(): Record<string, string> {
  const token = session.accessToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Sends a request; resolves with the parsed JSON (undefined for 204), rejects with a ProblemError. */
export async function request<T>(method: Method, path: Route, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders(), ...options.headers };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(url(path, options.query), { method, headers, body, signal: options.signal });
  } catch (error) {
    throw new ProblemError(toProblem(error));
  }
  if (!response.ok) {
    const problem = await problemFromResponse(response);
    if (response.status === 401 && session.get()) session.clear();
    throw new ProblemError(problem);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const api = {
  get: <T>(path: Route, options?: RequestOptions) => request<T>("GET", path, options),
  post: <T>(path: Route, body?: unknown, options?: RequestOptions) => request<T>("POST", path, { ...options, body }),
  patch: <T>(path: Route, body?: unknown, options?: RequestOptions) => request<T>("PATCH", path, { ...options, body }),
  delete: <T>(path: Route, options?: RequestOptions) => request<T>("DELETE", path, options),
};
