// A small bar chart drawn in SVG, no chart library: one slot per value, a
// bar where the value is above zero and an empty slot where it is zero.
// Screen readers get the picture as one image named by `title` and
// described by `summary`; the numbers themselves belong in a table the
// caller offers beside it. No inline styles (the app's CSP has no
// 'unsafe-inline'): geometry is in SVG attributes, looks in the CSS module.
import { useId } from "react";
import styles from "./bar-chart.module.css";

export interface BarDatum {
  /** Unique among the data (a date). */
  key: string;
  /** Under the axis, for the first and last slot. */
  label: string;
  value: number;
  /** The slot's tooltip; `label: value` by default. */
  detail?: string;
}

/** User units of the SVG: each slot is SLOT wide, the bar inside it BAR wide. */
const SLOT = 10;
const BAR = 7;
const HEIGHT = 100;

/** A bar's height in user units: proportional to the largest, and at least 1 so a small value still shows. */
export function barHeight(value: number, max: number): number {
  if (!(value > 0) || !(max > 0)) return 0;
  return Math.max((value / max) * HEIGHT, 1);
}

export function BarChart({ data, title, summary, peakLabel }: { data: readonly BarDatum[]; title: string; summary: string; peakLabel?: string }) {
  const id = useId();
  const max = Math.max(0, ...data.map((d) => d.value));
  const width = Math.max(data.length, 1) * SLOT;
  const first = data[0];
  const last = data[data.length - 1];
  return (
    <figure className={styles.figure}>
      {peakLabel && (
        <div className={styles.peak} aria-hidden="true">
          {peakLabel}
        </div>
      )}
      <svg
        className={styles.chart}
        viewBox={`0 0 ${width} ${HEIGHT}`}
        preserveAspectRatio="none"
        role="img"
        aria-labelledby={`${id}-title`}
        aria-describedby={`${id}-desc`}
      >
        <title id={`${id}-title`}>{title}</title>
        <desc id={`${id}-desc`}>{summary}</desc>
        {data.map((d, i) => {
          const h = barHeight(d.value, max);
          return (
            <g key={d.key} className={styles.slot} data-testid="bar-slot">
              <title>{d.detail ?? `${d.label}: ${d.value}`}</title>
              <rect className={styles.hit} x={i * SLOT} y={0} width={SLOT} height={HEIGHT} />
              {h > 0 && <rect className={styles.bar} data-testid="bar" x={i * SLOT + (SLOT - BAR) / 2} y={HEIGHT - h} width={BAR} height={h} />}
            </g>
          );
        })}
        <line className={styles.baseline} x1={0} x2={width} y1={HEIGHT} y2={HEIGHT} vectorEffect="non-scaling-stroke" />
      </svg>
      {first && last && (
        <div className={styles.axis} aria-hidden="true">
          <span>{first.label}</span>
          {last !== first && <span>{last.label}</span>}
        </div>
      )}
    </figure>
  );
}
