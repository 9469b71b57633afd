import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { BarChart, barHeight, type BarDatum } from "./bar-chart";

const data = (values: number[]): BarDatum[] => values.map((value, i) => ({ key: `d${i}`, label: `Day ${i + 1}`, value }));

describe("BarChart", () => {
  it("has one slot per value and a bar only where the value is above zero", () => {
    render(<BarChart data={data([5, 0, 10, 0, 1])} title="Tokens per day" summary="16 tokens over 5 days" />);
    expect(screen.getAllByTestId("bar-slot")).toHaveLength(5);
    const bars = screen.getAllByTestId("bar");
    expect(bars).toHaveLength(3);
    // The largest fills the height, the others in proportion, each at the baseline.
    expect(bars.map((b) => Number(b.getAttribute("height")))).toEqual([50, 100, 10]);
    expect(bars.map((b) => Number(b.getAttribute("y")) + Number(b.getAttribute("height")))).toEqual([100, 100, 100]);
    // In its own slot: the third value's bar sits in the third slot.
    expect(Number(bars[1]!.getAttribute("x"))).toBeGreaterThanOrEqual(20);
    expect(Number(bars[1]!.getAttribute("x"))).toBeLessThan(30);
  });

  it("is one image named by its title and described by its summary", () => {
    render(<BarChart data={data([1, 2])} title="Tokens per day" summary="3 tokens over 2 days" />);
    const image = screen.getByRole("img", { name: "Tokens per day" });
    expect(image).toHaveAccessibleDescription("3 tokens over 2 days");
  });

  it("labels the first and the last slot and tells each slot's detail on hover", () => {
    const { container } = render(
      <BarChart data={[{ key: "a", label: "Nov 2", value: 3, detail: "Nov 2: 3 tokens" }, ...data([0, 4])]} title="t" summary="s" />,
    );
    expect(screen.getByText("Nov 2")).toBeInTheDocument();
    expect(screen.getByText("Day 2")).toBeInTheDocument();
    const titles = [...container.querySelectorAll("g > title")].map((t) => t.textContent);
    expect(titles).toEqual(["Nov 2: 3 tokens", "Day 1: 0", "Day 2: 4"]);
  });

  it("draws nothing but empty slots when every value is zero", () => {
    render(<BarChart data={data([0, 0, 0])} title="t" summary="s" />);
    expect(screen.getAllByTestId("bar-slot")).toHaveLength(3);
    expect(screen.queryAllByTestId("bar")).toHaveLength(0);
  });

  it("keeps a small value visible next to a large one", () => {
    expect(barHeight(1, 1_000_000)).toBe(1);
    expect(barHeight(0, 10)).toBe(0);
    expect(barHeight(5, 0)).toBe(0);
    expect(barHeight(10, 10)).toBe(100);
  });
});
