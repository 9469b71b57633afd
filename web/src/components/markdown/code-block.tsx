import { useEffect, useState, type ReactNode } from "react";

type Highlighter = typeof import("./highlight").highlight;
let loaded: Promise<Highlighter> | null = null;
/** The highlighter's chunk, fetched once, the first time a code block shows. */
function loadHighlighter(): Promise<Highlighter> {
  loaded ??= import("./highlight").then((m) => m.highlight);
  return loaded;
}

/** A fenced code block: highlighted once the highlighter is loaded, with a copy button. */
export function CodeBlock({ code, language }: { code: string; language?: string }) {
  const [highlighter, setHighlighter] = useState<Highlighter | null>(null);
  const [copied, setCopied] = useState<"idle" | "copied" | "failed">("idle");

  useEffect(() => {
    let live = true;
    if (language) void loadHighlighter().then((h) => live && setHighlighter(() => h));
    return () => {
      live = false;
    };
  }, [language]);

  useEffect(() => {
    if (copied === "idle") return;
    const t = setTimeout(() => setCopied("idle"), 2_000);
    return () => clearTimeout(t);
  }, [copied]);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(code);
      setCopied("copied");
    } catch {
      setCopied("failed");
    }
  };

  let body: ReactNode = code;
  if (highlighter) {
    try {
      body = highlighter(code, language) ?? code;
    } catch {
      body = code;
    }
  }
  return (
    <div className="md-code">
      <div className="md-code-bar">
        <span>{language ?? "text"}</span>
        <button type="button" onClick={() => void copy()} aria-label={`Copy the ${language ?? "text"} code`}>
          {copied === "copied" ? "Copied" : copied === "failed" ? "Copy failed" : "Copy"}
        </button>
        <span className="visually-hidden" aria-live="polite">
          {copied === "copied" ? "Code copied to the clipboard" : copied === "failed" ? "The code could not be copied" : ""}
        </span>
      </div>
      <pre>
        <code className={language ? `hljs language-${language}` : "hljs"}>{body}</code>
      </pre>
    </div>
  );
}
