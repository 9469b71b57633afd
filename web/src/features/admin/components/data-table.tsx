// A table of a figure's rows: a caption (its accessible name), column
// headers, the first column as row headers, numbers aligned right. Long
// lists show their first `limit` rows and say so (the CSV has them all);
// so does the first page of a paged list (`more`: the server has more).
import type { ReactNode } from "react";
import styles from "./admin.module.css";

export interface Column<T> {
  header: string;
  cell: (row: T) => ReactNode;
  numeric?: boolean;
}

export function DataTable<T>({
  caption,
  columns,
  rows,
  rowKey,
  limit,
  more = false,
  empty = "Nothing yet.",
}: {
  caption: string;
  columns: readonly Column<T>[];
  rows: readonly T[];
  rowKey: (row: T, index: number) => string;
  limit?: number;
  more?: boolean;
  empty?: string;
}) {
  if (rows.length === 0) return <p>{empty}</p>;
  const shown = limit !== undefined ? rows.slice(0, limit) : rows;
  return (
    <>
      {/* Focusable, so a keyboard can scroll a table wider than the screen. */}
      <div className={styles.tableWrap} tabIndex={0} role="group" aria-label={caption}>
        <table className={styles.table}>
          <caption>{caption}</caption>
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c.header} scope="col" className={c.numeric ? styles.numeric : undefined}>
                  {c.header}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((row, i) => (
              <tr key={rowKey(row, i)}>
                {columns.map((c, j) =>
                  j === 0 ? (
                    <th key={c.header} scope="row" className={c.numeric ? styles.numeric : undefined}>
                      {c.cell(row)}
                    </th>
                  ) : (
                    <td key={c.header} className={c.numeric ? styles.numeric : undefined}>
                      {c.cell(row)}
                    </td>
                  ),
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {shown.length < rows.length ? (
        <p className={styles.note}>
          The first {shown.length} of {rows.length} rows; the CSV has them all.
        </p>
      ) : (
        more && <p className={styles.note}>The first {shown.length} rows; the CSV has them all.</p>
      )}
    </>
  );
}
