// Saves an answer of the API as a file: fetched with the bearer token (and
// its silent refresh), so not a plain link, then handed to the browser as
// a Blob behind a temporary object URL.
import { authorizedFetch, url, type RequestOptions, type Route } from "./api";
import { ProblemError, problemFromResponse, toProblem } from "./problem";

/** The file name of a `Content-Disposition: attachment; filename="..."`, if any. */
export function attachmentName(disposition: string | null): string | undefined {
  const match = disposition?.match(/filename="([^"]+)"/i) ?? disposition?.match(/filename=([^;\s]+)/i);
  return match?.[1];
}

/**
 * GETs `path` asking for `accept` and saves the body under the server's
 * file name (else `fallback`). Rejects with a ProblemError, like `api`.
 */
export async function download(path: Route, options: { query?: RequestOptions["query"]; accept: string; fallback: string }): Promise<string> {
  let response: Response;
  try {
    response = await authorizedFetch(url(path, options.query), {
      method: "GET",
      headers: { Accept: options.accept },
      credentials: "same-origin",
    });
  } catch (error) {
    throw new ProblemError(toProblem(error));
  }
  if (!response.ok) throw new ProblemError(await problemFromResponse(response));
  const name = attachmentName(response.headers.get("Content-Disposition")) ?? options.fallback;
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  try {
    const link = document.createElement("a");
    link.href = href;
    link.download = name;
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
  } finally {
    // After the click the browser holds the file; the URL may go.
    setTimeout(() => URL.revokeObjectURL(href), 0);
  }
  return name;
}
