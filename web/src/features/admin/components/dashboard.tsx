// The admin dashboard: the operators' figures from the analytics service,
// each with its CSV. Loaded on its own (React.lazy in admin-page.tsx): none
// of it is in the app's first load.
import { useState } from "react";
import { BarChart, type BarDatum } from "@/components/bar-chart";
import { Field } from "@/components/ui";
import {
  sources,
  useFigure,
  type ConversationLength,
  type DailyPoint,
  type DailySeries,
  type LifetimeValueList,
  type ModelUsageList,
  type Mrr,
  type OverdueInvoiceList,
  type PlanCountList,
  type PlanSubscriptionList,
  type TopUserList,
} from "../api/analytics";
import { daysSince, lastDays, utcMonth, utcToday, type Range } from "../utils/range";
import { DataTable } from "./data-table";
import { ChartOrTable, FigureSection } from "./figure-section";
import { RangePicker } from "./range-picker";
import styles from "./admin.module.css";

const number = new Intl.NumberFormat("en-US");
// The API's days are UTC days: shown as such, whatever the browser's zone.
const shortDay = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
const longDay = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", year: "numeric", timeZone: "UTC" });
const utc = (date: string) => new Date(`${date.slice(0, 10)}T00:00:00Z`);

/** Money exactly as the API sends it (a decimal string), never through a float. */
export const money = (amount: string, currency = "USD") => (currency === "USD" ? `$${amount}` : `${amount} ${currency}`);
/** An average (not money) to one decimal; "—" when there is none. */
const average = (value: string | null | undefined) => (value ? Number(value).toFixed(1) : "—");
/** Rows a long list shows (its CSV has them all). */
const SHOWN = 20;
const TOP_USERS = 10;

/** Today's figures; `today` is fixed by tests. */
export default function Dashboard({ today = utcToday() }: { today?: string }) {
  const [range, setRange] = useState<Range>(() => lastDays(30, today));
  const [month, setMonth] = useState(() => utcMonth(today));
  const days = daysSince(range.from, today);
  const since = `Conversations started since ${longDay.format(utc(range.from))} (the last ${days} ${days === 1 ? "day" : "days"}).`;

  const daily = useFigure<DailySeries>(sources.daily(range.from, range.to));
  const usersByPlan = useFigure<PlanCountList>(sources.usersByPlan());
  const mrr = useFigure<Mrr>(sources.mrr());
  const subscriptions = useFigure<PlanSubscriptionList>(sources.subscriptions());
  const modelUsage = useFigure<ModelUsageList>(sources.modelUsage(month), /^\d{4}-\d{2}$/.test(month));
  const topUsers = useFigure<TopUserList>(sources.topUsers(days, TOP_USERS));
  const conversationLength = useFigure<ConversationLength>(sources.conversationLength(days));
  const overdue = useFigure<OverdueInvoiceList>(sources.overdueInvoices());
  const lifetime = useFigure<LifetimeValueList>(sources.lifetimeValue());

  const dailyDownload = { label: "Daily series", source: sources.daily(range.from, range.to) };
  return (
    <>
      <h1>Admin</h1>
      <p className={styles.intro}>The platform's figures, from the analytics service. Days are UTC days.</p>
      <RangePicker value={range} today={today} onChange={setRange} />

      <FigureSection title="Signups per day" query={daily} downloads={[{ ...dailyDownload, label: "Signups per day" }]}>
        {(d) => <DailyChart points={d.items} label="Signups per day" unit="signups" value={(p) => p.signups} show={(p) => number.format(p.signups)} />}
      </FigureSection>

      <FigureSection title="Users by plan" query={usersByPlan} downloads={[{ label: "Users by plan", source: sources.usersByPlan() }]}>
        {(d) => (
          <DataTable
            caption="Active users per plan tier"
            rows={d.items}
            rowKey={(r) => r.planTier}
            columns={[
              { header: "Plan tier", cell: (r) => r.planTier },
              { header: "Users", cell: (r) => number.format(r.count), numeric: true },
            ]}
          />
        )}
      </FigureSection>

      <FigureSection
        title="Monthly recurring revenue"
        query={mrr}
        downloads={[
          { label: "MRR now", short: "now", source: sources.mrr() },
          { label: "MRR per day", short: "per day", source: dailyDownload.source },
        ]}
        note="Active subscriptions whose period holds today; a yearly one counts as a twelfth of its price."
      >
        {(m) => (
          <>
            <p className={styles.big} data-testid="mrr">
              {money(m.mrr, m.currency)}
            </p>
            {daily.data && (
              <DailyChart points={daily.data.items} label="MRR per day" unit="MRR" value={(p) => Number(p.mrr)} show={(p) => money(p.mrr, m.currency)} />
            )}
          </>
        )}
      </FigureSection>

      <FigureSection title="Subscriptions by plan" query={subscriptions} downloads={[{ label: "Subscriptions by plan", source: sources.subscriptions() }]}>
        {(d) => (
          <DataTable
            caption="Active subscriptions per plan"
            rows={d.items}
            rowKey={(r) => r.plan}
            columns={[
              { header: "Plan", cell: (r) => r.plan },
              { header: "Subscriptions", cell: (r) => number.format(r.subscriptionCount), numeric: true },
              { header: "Users", cell: (r) => number.format(r.userCount), numeric: true },
            ]}
          />
        )}
      </FigureSection>

      <FigureSection
        title="Token usage by model"
        query={modelUsage}
        downloads={[
          { label: "Token usage by model", short: "by model", source: sources.modelUsage(month) },
          { label: "Token usage by user", short: "by user", source: sources.userUsage(month) },
        ]}
        controls={
          <div className={styles.month}>
            <Field label="Month (UTC)" type="month" value={month} max={utcMonth(today)} onChange={(e) => setMonth(e.target.value)} />
          </div>
        }
      >
        {(d) => (
          <DataTable
            caption={`Calls, tokens and cost per model in ${d.month}`}
            rows={d.items}
            rowKey={(r) => r.model}
            empty="No tokens used in this month."
            columns={[
              { header: "Model", cell: (r) => r.model },
              { header: "Calls", cell: (r) => number.format(r.usageCount), numeric: true },
              { header: "Tokens", cell: (r) => number.format(r.totalTokens), numeric: true },
              { header: "Average tokens", cell: (r) => average(r.avgTokens), numeric: true },
              { header: "Cost", cell: (r) => money(r.totalCost), numeric: true },
            ]}
          />
        )}
      </FigureSection>

      <FigureSection title="Top users" query={topUsers} note={since} downloads={[{ label: "Top users", source: sources.topUsers(days, TOP_USERS) }]}>
        {(d) => (
          <DataTable
            caption={`The ${TOP_USERS} users with the most tokens`}
            rows={d.items}
            rowKey={(r) => r.userId}
            empty="No conversations in this window."
            columns={[
              { header: "User", cell: (r) => <code>{r.userId}</code> },
              { header: "Conversations", cell: (r) => number.format(r.conversationCount), numeric: true },
              { header: "Tokens", cell: (r) => number.format(r.totalTokens), numeric: true },
            ]}
          />
        )}
      </FigureSection>

      <FigureSection title="Conversation length" query={conversationLength} note={since} downloads={[{ label: "Conversation length", source: sources.conversationLength(days) }]}>
        {(d) => (
          <dl className={styles.stats}>
            <div>
              <dt>Messages per conversation</dt>
              <dd>{average(d.avgMessages)}</dd>
            </div>
            <div>
              <dt>Tokens per conversation</dt>
              <dd>{average(d.avgTokens)}</dd>
            </div>
          </dl>
        )}
      </FigureSection>

      <FigureSection title="Overdue invoices" query={overdue} note="Open invoices past their due date, oldest due first." downloads={[{ label: "Overdue invoices", source: sources.overdueInvoices() }]}>
        {(d) => (
          <DataTable
            caption="Overdue invoices"
            rows={d.items}
            rowKey={(r) => r.id}
            limit={SHOWN}
            more={d.nextCursor != null}
            empty="No invoice is overdue."
            columns={[
              { header: "Invoice", cell: (r) => r.invoiceNumber },
              { header: "User", cell: (r) => <code>{r.userId}</code> },
              { header: "Total", cell: (r) => money(r.total), numeric: true },
              { header: "Due", cell: (r) => <time dateTime={r.dueDate}>{longDay.format(utc(r.dueDate))}</time> },
            ]}
          />
        )}
      </FigureSection>

      <FigureSection title="Lifetime value" query={lifetime} note="Succeeded payments per user." downloads={[{ label: "Lifetime value", source: sources.lifetimeValue() }]}>
        {(d) => (
          <DataTable
            caption="Succeeded payments and their total per user"
            rows={d.items}
            rowKey={(r, i) => `${r.userId}-${r.amount}-${i}`}
            limit={SHOWN}
            more={d.nextCursor != null}
            empty="No payment yet."
            columns={[
              { header: "User", cell: (r) => <code>{r.userId}</code> },
              { header: "Payments", cell: (r) => number.format(r.paymentCount), numeric: true },
              { header: "Amount", cell: (r) => money(r.amount), numeric: true },
              { header: "Total spent", cell: (r) => money(r.totalSpent), numeric: true },
              {
                header: "Signed up",
                cell: (r) => (r.signupDate ? <time dateTime={r.signupDate}>{longDay.format(new Date(r.signupDate))}</time> : "—"),
              },
            ]}
          />
        )}
      </FigureSection>
    </>
  );
}

/**
 * A daily series as the shared bar chart (one slot per day), or as a
 * table. `value` sizes the bars only; `show` is what is read.
 */
function DailyChart({
  points,
  label,
  unit,
  value,
  show,
}: {
  points: readonly DailyPoint[];
  label: string;
  unit: string;
  value: (p: DailyPoint) => number;
  show: (p: DailyPoint) => string;
}) {
  const data: BarDatum[] = points.map((p) => ({
    key: p.date,
    label: shortDay.format(utc(p.date)),
    value: value(p),
    detail: `${shortDay.format(utc(p.date))}: ${show(p)}`,
  }));
  const peak = points.reduce<DailyPoint | undefined>((best, p) => (value(p) > (best ? value(best) : 0) ? p : best), undefined);
  const first = points[0];
  const last = points[points.length - 1];
  const summary =
    first && last
      ? `${unit} per day from ${longDay.format(utc(first.date))} to ${longDay.format(utc(last.date))}` +
        (peak ? `; the most, ${show(peak)}, on ${longDay.format(utc(peak.date))}.` : "; none in these days.")
      : "No days.";
  return (
    <ChartOrTable
      label={label}
      chart={<BarChart data={data} title={`${label} (UTC)`} summary={summary} peakLabel={peak ? `Peak: ${show(peak)}` : undefined} />}
      table={
        <DataTable
          caption={`${label} (UTC)`}
          rows={points}
          rowKey={(p) => p.date}
          columns={[
            { header: "Day (UTC)", cell: (p) => <time dateTime={p.date}>{longDay.format(utc(p.date))}</time> },
            { header: unit, cell: show, numeric: true },
          ]}
        />
      }
    />
  );
}
