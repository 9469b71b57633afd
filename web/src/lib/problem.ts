// Every failure of a call to the API, as one shape: the gateway's RFC 9457
// problem, or one made up here for what never reached it.

export interface Problem {
  status: number;
  code: string;
  title: string;
  detail: string;
  errors?: Record<string, string>;
  retryAfter?: number;
}

export class ProblemError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail || problem.title);
    this.name = "ProblemError";
    this.problem = problem;
  }
}

export function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.status === "number" && typeof v.code === "string";
}

/** The problem of a non-2xx response: its body if it is one, else one made from the status. */
export async function problemFromResponse(response: Response): Promise<Problem> {
  let body: unknown = undefined;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's HTML page, an empty body): made up below.
  }
  if (isProblem(body)) {
    const b = body as Problem & { errors?: Record<string, string> | null; retryAfter?: number | null };
    return {
      status: b.status,
      code: b.code,
      title: typeof b.title === "string" ? b.title : response.statusText,
      detail: typeof b.detail === "string" ? b.detail : "",
      ...(b.errors ? { errors: b.errors } : {}),
      ...(typeof b.retryAfter === "number" ? { retryAfter: b.retryAfter } : {}),
    };
  }
  return {
    status: response.status,
    code: response.status >= 500 ? "server_error" : "http_error",
    title: response.statusText || `HTTP ${response.status}`,
    detail: `The server answered ${response.status}.`,
  };
}

/** Anything thrown by fetch or by our code, as a problem. */
export function toProblem(error: unknown): Problem {
  if (error instanceof ProblemError) return error.problem;
  if (isProblem(error)) return error;
  if (error instanceof DOMException && error.name === "AbortError") {
    return { status: 0, code: "aborted", title: "Stopped", detail: "Stopped." };
  }
  return {
    status: 0,
    code: "network_error",
    title: "Network error",
    detail: "The server could not be reached. Check your connection and try again.",
  };
}

/** A sentence a person can act on. */
export function problemMessage(problem: Problem): string {
  switch (problem.code) {
    case "network_error":
      return "The server could not be reached. Check your connection and try again.";
    case "invalid_credentials":
      return "That email and password do not match an account.";
    case "email_taken":
      return "An account with this email already exists. Log in instead?";
    case "quota_exceeded":
      return "You have used this month's tokens for your plan.";
    case "conversation_limit":
      return "Your plan allows no more conversations.";
    case "message_limit":
      return "This conversation has reached your plan's message limit.";
    case "rate_limited":
      return problem.retryAfter
        ? `Too many requests. Try again in ${problem.retryAfter} seconds.`
        : "Too many requests. Try again in a moment.";
    case "provider_unavailable":
      return "The model's provider is unavailable right now. Try again, or pick another model.";
    case "upstream_timeout":
      return "The reply took too long. Try again.";
    case "api_key_limit":
      return "You have as many API keys as allowed. Revoke one you no longer use first.";
    case "unauthorized":
      return "Your session has ended. Log in again.";
    default:
      return problem.detail || problem.title || "Something went wrong.";
  }
}
