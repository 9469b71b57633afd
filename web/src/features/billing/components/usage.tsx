import { Suspense, lazy } from "react";
import { Link } from "react-router-dom";
import { ProblemAlert, ui } from "@/components/ui";
import { useUsage } from "../api/billing";
import styles from "./billing.module.css";

const number = new Intl.NumberFormat("en-US");
// The chart comes in a chunk of its own, after the page's first paint.
const DailyUsage = lazy(() => import("./daily-usage"));

export function UsagePage() {
  const usage = useUsage();
  const u = usage.data;
  return (
    <div className={ui.page}>
      <h1>Usage this month</h1>
      <ProblemAlert problem={usage.error?.problem} />
      {usage.isPending && <p>Loading…</p>}
      {u && (
        <>
          <p>
            Since {u.billingMonth}: {number.format(u.tokensUsed)} of {number.format(u.monthlyQuota)} tokens used.
          </p>
          <label htmlFor="quota-meter" className="visually-hidden">
            Tokens used of the monthly quota
          </label>
          <meter id="quota-meter" className={styles.meter} min={0} max={Math.max(u.monthlyQuota, 1)} value={u.tokensUsed} />
          <dl className={styles.stats}>
            <div className={styles.stat}>
              <dt>Tokens used</dt>
              <dd data-testid="tokens-used">{number.format(u.tokensUsed)}</dd>
            </div>
            <div className={styles.stat}>
              <dt>Remaining</dt>
              <dd>{number.format(u.remaining)}</dd>
            </div>
            <div className={styles.stat}>
              <dt>Messages</dt>
              <dd>{number.format(u.messagesCount)}</dd>
            </div>
            <div className={styles.stat}>
              <dt>Conversations</dt>
              <dd>{number.format(u.conversationsCount)}</dd>
            </div>
            <div className={styles.stat}>
              <dt>Cost</dt>
              <dd>${u.costThisMonth}</dd>
            </div>
          </dl>
          <p>
            Need more? <Link to="/billing">See the plans</Link>.
          </p>
        </>
      )}
      <Suspense fallback={<p role="status">Loading daily usage…</p>}>
        <DailyUsage days={30} />
      </Suspense>
    </div>
  );
}
