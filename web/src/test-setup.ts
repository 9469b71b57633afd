import "@testing-library/jest-dom/vitest";

// jsdom lays nothing out (every size is 0): give elements a size, so that a
// virtualised list has a viewport (800 px) and rows (96 px) to place.
Object.defineProperty(HTMLElement.prototype, "clientHeight", { configurable: true, get: () => 800 });
Object.defineProperty(HTMLElement.prototype, "clientWidth", { configurable: true, get: () => 800 });
Object.defineProperty(HTMLElement.prototype, "offsetHeight", { configurable: true, get: () => 96 });
Object.defineProperty(HTMLElement.prototype, "offsetWidth", { configurable: true, get: () => 800 });
// Content height: the children's heights as their styles say (a virtual
// list's spacer sets one), else a row's.
Object.defineProperty(HTMLElement.prototype, "scrollHeight", {
  configurable: true,
  get(this: HTMLElement) {
    let height = 0;
    for (const child of Array.from(this.children)) height += parseFloat((child as HTMLElement).style.height) || 96;
    return Math.max(height, 800);
  },
});
// ...and can be scrolled (jsdom keeps scrollTop but has no scrollTo).
Element.prototype.scrollTo = function scrollTo(this: Element, options?: ScrollToOptions | number, y?: number) {
  const top = typeof options === "number" ? y : options?.top;
  if (top === undefined) return;
  this.scrollTop = top;
  this.dispatchEvent(new Event("scroll"));
} as Element["scrollTo"];
