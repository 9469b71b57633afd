// The usage page's last days: tokens per UTC day as a bar chart, or the
// same numbers as a table. Loaded on its own (React.lazy in usage.tsx), so
// the chart is not part of the app's first load.
import { useId, useState } from "react";
import { BarChart, type BarDatum } from "@/components/bar-chart";
import { Button, ProblemAlert } from "@/components/ui";
import { useDailyUsage, type DailyUsageDay } from "../api/daily-usage";
import styles from "./daily-usage.module.css";

const number = new Intl.NumberFormat("en-US");
// The API's days are UTC days: shown as such, whatever the browser's zone.
const shortDay = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
const longDay = new Intl.DateTimeFormat("en-US", { weekday: "short", month: "short", day: "numeric", year: "numeric", timeZone: "UTC" });

const utc = (date: string) => new Date(`${date}T00:00:00Z`);
/** Money as the API sends it (a decimal string), never through a float. */
const usd = (cost: string) => `$${cost}`;

function bars(days: readonly DailyUsageDay[]): BarDatum[] {
  return days.map((d) => ({
    key: d.date,
    label: shortDay.format(utc(d.date)),
    value: d.tokens,
    detail: `${shortDay.format(utc(d.date))}: ${number.format(d.tokens)} tokens, ${usd(d.costUsd)}`,
  }));
}

function summary(days: readonly DailyUsageDay[]): { text: string; peak: DailyUsageDay | undefined } {
  const total = days.reduce((sum, d) => sum + d.tokens, 0);
  const peak = days.reduce<DailyUsageDay | undefined>((best, d) => (d.tokens > (best?.tokens ?? 0) ? d : best), undefined);
  const active = days.filter((d) => d.tokens > 0).length;
  const text =
    `${number.format(total)} tokens over ${days.length} days, used on ${active} of them` +
    (peak ? `; the most, ${number.format(peak.tokens)}, on ${longDay.format(utc(peak.date))}.` : ".");
  return { text, peak };
}

export function UsageTable({ days }: { days: readonly DailyUsageDay[] }) {
  return (
    <div className={styles.tableWrap}>
      <table className={styles.table}>
        <caption className="visually-hidden">Tokens and cost per day (UTC)</caption>
        <thead>
          <tr>
            <th scope="col">Day (UTC)</th>
            <th scope="col">Tokens</th>
            <th scope="col">Cost</th>
          </tr>
        </thead>
        <tbody>
          {days.map((d) => (
            <tr key={d.date}>
              <th scope="row">
                <time dateTime={d.date}>{longDay.format(utc(d.date))}</time>
              </th>
              <td>{number.format(d.tokens)}</td>
              <td>{usd(d.costUsd)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export default function DailyUsage({ days = 30 }: { days?: number }) {
  const query = useDailyUsage(days);
  const [asTable, setAsTable] = useState(false);
  const heading = useId();
  const items = query.data?.items;
  const used = items?.some((d) => d.tokens > 0) ?? false;
  return (
    <section className={styles.daily} aria-labelledby={heading}>
      <div className={styles.header}>
        <h2 id={heading}>Last {days} days</h2>
        {used && (
          <Button variant="secondary" aria-pressed={asTable} onClick={() => setAsTable((t) => !t)}>
            {asTable ? "Show as chart" : "Show as table"}
          </Button>
        )}
      </div>
      <ProblemAlert problem={query.error?.problem}>
        <Button variant="secondary" onClick={() => void query.refetch()}>
          Try again
        </Button>
      </ProblemAlert>
      {query.isPending && <p role="status">Loading daily usage…</p>}
      {items && !used && <p>No tokens used in the last {days} days.</p>}
      {items && used && (asTable ? <UsageTable days={items} /> : <Chart days={items} />)}
    </section>
  );
}

function Chart({ days }: { days: readonly DailyUsageDay[] }) {
  const { text, peak } = summary(days);
  return (
    <BarChart
      data={bars(days)}
      title={`Tokens per day, the last ${days.length} days (UTC)`}
      summary={text}
      peakLabel={peak ? `Peak: ${number.format(peak.tokens)} tokens` : undefined}
    />
  );
}
