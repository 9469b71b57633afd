// The one client of the gateway's API: JSON in and out, the bearer token
// from the session (refreshed by the cookie when it expired), every failure
// thrown as a ProblemError.
import type { ApiPath, TokenResponse } from "./api-types";
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

/**
 * The headers of a call the gateway authenticates by the refresh-token
 * cookie: the CSRF header it requires, and the ask to answer with the
 * cookie (never with the refresh token in the JSON).
 */
export const COOKIE_HEADERS = { "X-Requested-With": "aichat", "X-Session-Cookie": "1" } as const;

let inFlight: Promise<boolean> | null = null;

/**
 * Trades the cookie for a new access token (the gateway rotates the cookie).
 * One call at a time: concurrent callers share it, and other tabs wait for
 * it (Web Locks), since two refreshes with the same cookie would look like a
 * stolen token and end the session. Resolves false when there is no session
 * any more (refused: the session is cleared) or the server was not reached.
 */
export function refreshSession(): Promise<boolean> {
  inFlight ??= (async () => {
    const call = async () => {
      try {
        const tokens = await send<TokenResponse>("POST", "/auth/refresh", { body: {}, headers: COOKIE_HEADERS, auth: false });
        session.set(tokens);
        return true;
      } catch (error) {
        const status = toProblem(error).status;
        if (status >= 400 && status < 500) session.clear();
        return false;
      }
    };
    const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
    return locks ? locks.request("aichat-refresh", call) : call();
  })().finally(() => {
    inFlight = null;
  });
  return inFlight;
}

/**
 * fetch with the bearer token; an answer 401 to a call that had one gets one
 * silent refresh and one more try (the token expired while the tab slept).
 */
export async function authorizedFetch(input: string, init: RequestInit & { headers?: Record<string, string> }): Promise<Response> {
  const hadToken = session.accessToken() !== null;
  const response = await fetch(input, { ...init, headers: { ...init.headers, ...authHeaders() } });
  if (response.status !== 401 || !hadToken || init.signal?.aborted) return response;
  if (!(await refreshSession())) return response;
  return fetch(input, { ...init, headers: { ...init.headers, ...authHeaders() } });
}

interface SendOptions extends RequestOptions {
  /** false: no bearer token and no refresh on 401 (the auth endpoints). */
  auth?: boolean;
}

async function send<T>(method: Method, path: Route, options: SendOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  const init = { method, headers, body, signal: options.signal, credentials: "same-origin" as const };
  let response: Response;
  try {
    response = options.auth === false ? await fetch(url(path, options.query), init) : await authorizedFetch(url(path, options.query), init);
  } catch (error) {
    throw new ProblemError(toProblem(error));
  }
  if (!response.ok) {
    const problem = await problemFromResponse(response);
    if (response.status === 401 && options.auth !== false && session.get()) session.clear();
    throw new ProblemError(problem);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Sends a request; resolves with the parsed JSON (undefined for 204), rejects with a ProblemError. */
export function request<T>(method: Method, path: Route, options: SendOptions = {}): Promise<T> {
  return send<T>(method, path, options);
}

export const api = {
  get: <T>(path: Route, options?: SendOptions) => request<T>("GET", path, options),
  post: <T>(path: Route, body?: unknown, options?: SendOptions) => request<T>("POST", path, { ...options, body }),
  patch: <T>(path: Route, body?: unknown, options?: SendOptions) => request<T>("PATCH", path, { ...options, body }),
  delete: <T>(path: Route, options?: SendOptions) => request<T>("DELETE", path, options),
};
