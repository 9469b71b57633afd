// The dashboard's date range: two UTC days (both included) and a few
// presets. A range the gateway would refuse is told at its field and not
// passed on; the figures keep the last good one.
import { useState } from "react";
import { Button, Field } from "@/components/ui";
import { lastDays, rangeErrors, type Range } from "../utils/range";
import styles from "./admin.module.css";

const PRESETS = [7, 30, 90, 365] as const;

export function RangePicker({ value, today, onChange }: { value: Range; today: string; onChange: (range: Range) => void }) {
  const [draft, setDraft] = useState<Range>(value);
  const errors = rangeErrors(draft);
  const edit = (next: Range) => {
    setDraft(next);
    if (Object.keys(rangeErrors(next)).length === 0) onChange(next);
  };
  return (
    <fieldset className={styles.range}>
      <legend>Date range (UTC days)</legend>
      <div className={styles.rangeFields}>
        <div>
          <Field label="From" type="date" value={draft.from} max={today} error={errors.from} onChange={(e) => edit({ ...draft, from: e.target.value })} />
        </div>
        <div>
          <Field label="To" type="date" value={draft.to} max={today} error={errors.to} onChange={(e) => edit({ ...draft, to: e.target.value })} />
        </div>
      </div>
      <div className={styles.presets}>
        {PRESETS.map((days) => {
          const preset = lastDays(days, today);
          const current = preset.from === value.from && preset.to === value.to;
          return (
            <Button key={days} variant="secondary" aria-pressed={current} onClick={() => edit(preset)}>
              Last {days} days
            </Button>
          );
        })}
      </div>
    </fieldset>
  );
}
