// An assistant's reply as Markdown (GitHub's flavour: tables, task lists,
// strike-through), safely: HTML in the text is shown as text, never parsed;
// links keep only http(s), mailto and relative targets (react-markdown's
// default URL filter) and open in a new tab; images are not fetched (the
// CSP allows none from elsewhere), their alt text shows instead.
import { Children, isValidElement, type ReactNode } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import { CodeBlock } from "./code-block";
import "./markdown.css";

function textOf(node: ReactNode): string {
  if (typeof node === "string" || typeof node === "number") return String(node);
  if (Array.isArray(node)) return node.map(textOf).join("");
  if (isValidElement<{ children?: ReactNode }>(node)) return textOf(node.props.children);
  return "";
}

const components: Components = {
  pre({ children }) {
    const code = Children.toArray(children)[0];
    const className = isValidElement<{ className?: string }>(code) ? (code.props.className ?? "") : "";
    const language = /language-([\w+#.-]+)/.exec(className)?.[1]?.toLowerCase();
    return <CodeBlock code={textOf(children).replace(/\n$/, "")} language={language} />;
  },
  a({ href, children }) {
    return (
      <a href={href} target="_blank" rel="noopener noreferrer nofollow">
        {children}
      </a>
    );
  },
  img({ alt }) {
    return <span className="md-img">[image{alt ? `: ${alt}` : ""}]</span>;
  },
};

export default function Markdown({ text }: { text: string }) {
  return (
    <div className="md">
      <ReactMarkdown remarkPlugins={[remarkGfm]} components={components}>
        {text}
      </ReactMarkdown>
    </div>
  );
}
