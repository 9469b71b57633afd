import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { MarkdownText } from ".";
import Markdown from "./markdown";

describe("a reply as Markdown", () => {
  it("renders emphasis, lists, tables and links", () => {
    const { container } = render(
      <Markdown text={"Some **bold** and `code`.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[docs](https://example.com/docs)"} />,
    );
    expect(container.querySelector("strong")).toHaveTextContent("bold");
    expect(container.querySelector("p code")).toHaveTextContent("code");
    expect(screen.getAllByRole("listitem").map((li) => li.textContent)).toEqual(["one", "two"]);
    expect(screen.getByRole("table")).toBeInTheDocument();
    const link = screen.getByRole("link", { name: "docs" });
    expect(link).toHaveAttribute("href", "https://example.com/docs");
    expect(link).toHaveAttribute("target", "_blank");
    expect(link.getAttribute("rel")).toContain("noopener");
  });

  it("shows HTML as text: no script, no handler, no javascript: link gets in", () => {
    const evil =
      '<script>window.pwned = 1</script>\n\n<img src=x onerror="window.pwned = 2">\n\n[click](javascript:window.pwned=3)\n\n![pic](https://evil.example/track.png)';
    const { container } = render(<Markdown text={evil} />);
    expect(container.querySelector("script")).toBeNull();
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("[onerror]")).toBeNull();
    expect(container.textContent).toContain("<script>window.pwned = 1</script>");
    const link = screen.getByText("click").closest("a");
    expect(link?.getAttribute("href") ?? "").not.toMatch(/javascript:/i);
    expect(container.textContent).toContain("[image: pic]");
    expect((window as { pwned?: number }).pwned).toBeUndefined();
  });

  it("highlights a fenced code block once the highlighter's chunk is in", async () => {
    const { container } = render(<Markdown text={"```rust\nfn main() { let x = 1; }\n```"} />);
    expect(screen.getByText("rust")).toBeInTheDocument();
    await waitFor(() => expect(container.querySelector("code .hljs-keyword")).not.toBeNull());
    expect(container.querySelector("pre code")).toHaveTextContent("fn main() { let x = 1; }");
  });

  it("shows a code block of an unknown language as plain text", async () => {
    const { container } = render(<Markdown text={"```nosuchlang\n<b>x</b>\n```"} />);
    await new Promise((r) => setTimeout(r, 50));
    expect(container.querySelector("pre code")).toHaveTextContent("<b>x</b>");
    expect(container.querySelector("pre b")).toBeNull();
  });

  it("the copy button puts the code, as written, on the clipboard", async () => {
    const user = userEvent.setup();
    const writeText = vi.spyOn(navigator.clipboard, "writeText");
    render(<Markdown text={"Try:\n\n```bash\necho 'hi' && ls\n```\n\nDone."} />);
    await user.click(screen.getByRole("button", { name: "Copy the bash code" }));
    expect(writeText).toHaveBeenCalledWith("echo 'hi' && ls");
    expect(await navigator.clipboard.readText()).toBe("echo 'hi' && ls");
    expect(screen.getByRole("button", { name: "Copy the bash code" })).toHaveTextContent("Copied");
    expect(screen.getByText("Code copied to the clipboard")).toBeInTheDocument();
  });

  it("the code-split wrapper shows the plain text until the renderer is loaded", async () => {
    const { container } = render(<MarkdownText text={"**hi**"} />);
    expect(container.textContent).toBe("**hi**");
    await waitFor(() => expect(container.querySelector("strong")).toHaveTextContent("hi"));
  });
});
