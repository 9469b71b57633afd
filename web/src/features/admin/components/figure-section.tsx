// One figure of the dashboard: its heading, its CSV download(s), what
// failed (with a retry), loading, then the figure itself.
import { useId, useState, type ReactNode } from "react";
import type { UseQueryResult } from "@tanstack/react-query";
import { Button, ProblemAlert } from "@/components/ui";
import { toProblem, type Problem, type ProblemError } from "@/lib/problem";
import { downloadCsv, type Source } from "../api/analytics";
import styles from "./admin.module.css";

export interface Download {
  /** What is saved, for the button's accessible name: "Download CSV of …". */
  label: string;
  /** Shown after "Download CSV" when a section has several ("by model"). */
  short?: string;
  source: Source;
}

export function FigureSection<T>({
  title,
  query,
  downloads,
  note,
  controls,
  children,
}: {
  title: string;
  query: UseQueryResult<T, ProblemError>;
  downloads: readonly Download[];
  note?: ReactNode;
  controls?: ReactNode;
  children: (data: T) => ReactNode;
}) {
  const heading = useId();
  const [saving, setSaving] = useState(false);
  const [failed, setFailed] = useState<Problem | null>(null);
  const save = async (source: Source) => {
    setSaving(true);
    setFailed(null);
    try {
      await downloadCsv(source);
    } catch (error) {
      setFailed(toProblem(error));
    } finally {
      setSaving(false);
    }
  };
  return (
    <section className={styles.section} aria-labelledby={heading} aria-busy={query.isFetching || saving}>
      <div className={styles.header}>
        <h2 id={heading}>{title}</h2>
        <div className={styles.actions}>
          {downloads.map((d) => (
            <Button key={d.label} variant="secondary" disabled={saving} onClick={() => void save(d.source)}>
              Download CSV<span className="visually-hidden"> of {d.label}</span>
              {downloads.length > 1 && <span aria-hidden="true"> ({d.short ?? d.label.toLowerCase()})</span>}
            </Button>
          ))}
        </div>
      </div>
      {note && <p className={styles.note}>{note}</p>}
      {controls}
      <ProblemAlert problem={failed} />
      <ProblemAlert problem={query.error?.problem}>
        <Button variant="secondary" onClick={() => void query.refetch()}>
          Try again
        </Button>
      </ProblemAlert>
      {query.isPending && query.fetchStatus !== "idle" && <p role="status">Loading {title.toLowerCase()}…</p>}
      {query.data !== undefined && children(query.data)}
    </section>
  );
}

/** A chart, or on request the same numbers as a table. */
export function ChartOrTable({ label, chart, table }: { label: string; chart: ReactNode; table: ReactNode }) {
  const [asTable, setAsTable] = useState(false);
  return (
    <>
      <div className={styles.actions}>
        <Button variant="secondary" aria-pressed={asTable} onClick={() => setAsTable((t) => !t)}>
          {asTable ? "Show as chart" : "Show as table"}
          <span className="visually-hidden"> ({label})</span>
        </Button>
      </div>
      {asTable ? table : chart}
    </>
  );
}
