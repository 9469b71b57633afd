// The Markdown renderer, code-split: the first load stays small, and until
// its chunk is in, a reply shows as plain text (the same words).
import { Suspense, lazy } from "react";

const Markdown = lazy(() => import("./markdown"));

export function MarkdownText({ text }: { text: string }) {
  return (
    <Suspense fallback={<div className="md-plain">{text}</div>}>
      <Markdown text={text} />
    </Suspense>
  );
}
