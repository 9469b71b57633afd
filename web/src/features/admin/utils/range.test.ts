import { describe, expect, it } from "vitest";
import { addDays, dayMs, daysSince, lastDays, rangeErrors, spanDays, utcMonth, utcToday } from "./range";

describe("the dashboard's range", () => {
  it("counts UTC days, both ends included", () => {
    expect(utcToday(new Date("2026-12-01T23:30:00-05:00"))).toBe("2026-12-02");
    expect(utcMonth("2026-12-02")).toBe("2026-12");
    expect(lastDays(30, "2026-12-01")).toEqual({ from: "2026-11-02", to: "2026-12-01" });
    expect(spanDays("2026-11-02", "2026-12-01")).toBe(30);
    expect(addDays("2024-02-28", 1)).toBe("2024-02-29");
    expect(addDays("2026-03-01", -1)).toBe("2026-02-28");
  });

  it("takes only real days", () => {
    expect(dayMs("2026-02-30")).toBeNaN();
    expect(dayMs("2026-2-01")).toBeNaN();
    expect(dayMs("")).toBeNaN();
    expect(dayMs("2024-02-29")).toBe(Date.UTC(2024, 1, 29));
  });

  it("refuses what the gateway would: no date, an end before the start, over 366 days", () => {
    expect(rangeErrors({ from: "2026-11-02", to: "2026-12-01" })).toEqual({});
    expect(rangeErrors({ from: "", to: "2026-12-01" })).toEqual({ from: "Enter a date." });
    expect(rangeErrors({ from: "2026-12-02", to: "2026-12-01" })).toEqual({ to: "The end must not be before the start." });
    expect(rangeErrors({ from: "2024-01-01", to: "2024-12-31" })).toEqual({});
    expect(rangeErrors({ from: "2024-01-01", to: "2025-01-01" })).toEqual({ to: "At most 366 days." });
  });

  it("gives the days back from today that the range starts, within 1..366", () => {
    expect(daysSince("2026-11-02", "2026-12-01")).toBe(30);
    expect(daysSince("2026-12-01", "2026-12-01")).toBe(1);
    expect(daysSince("2020-01-01", "2026-12-01")).toBe(366);
    expect(daysSince("2027-01-01", "2026-12-01")).toBe(1);
  });
});
