//! CSV answers (RFC 4180), for the admin endpoints' `Accept: text/csv`:
//! a header row, then one row per item, fields quoted only when they must
//! be, lines ended by CRLF. Not a CSV reader, and not a general
//! serializer: each answer type says its columns and cells ([`Row`]).

/// An item that is also one CSV row.
pub trait Row {
    /// The header row: the JSON field names, in order.
    const COLUMNS: &'static [&'static str];
    /// The item's cells, in the order of [`Row::COLUMNS`] (empty for null).
    fn cells(&self) -> Vec<String>;
}

/// A CSV document: the header row, then one row per [`Row`].
pub fn document<T: Row>(rows: &[T]) -> String {
    let mut out = String::new();
    line(&mut out, T::COLUMNS.iter().copied());
    for row in rows {
        line(&mut out, row.cells().iter().map(String::as_str));
    }
    out
}

/// Appends one record and its CRLF.
fn line<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, value) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, value);
    }
    out.push_str("\r\n");
}

/// Appends one field: quoted (its quotes doubled) when it holds a comma, a
/// quote, a line break or a leading or trailing space. A text that a
/// spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return, and not a number) gets a leading `'` first
/// (OWASP's CSV injection advice): the file is opened by people, and plan
/// or model names are not ours alone to choose.
fn field(out: &mut String, value: &str) {
    let guarded;
    let value = if is_formula(value) {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    let quote =
        value.contains([',', '"', '\r', '\n']) || value.starts_with(' ') || value.ends_with(' ');
    if quote {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn is_formula(value: &str) -> bool {
    value.starts_with(['=', '+', '-', '@', '\t', '\r'])
        // A signed decimal such as `-12.50` is money, not a formula.
        && !value.strip_prefix(['-', '+']).is_some_and(is_decimal)
}

fn is_decimal(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next().unwrap_or("0");
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// Whether the `Accept` header prefers CSV: `text/csv` is acceptable
/// (q > 0) and no JSON type (`application/json`, `application/*`, `*/*`
/// are JSON here) is preferred to it. Without the header: JSON.
pub fn wants_csv(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut csv: Option<f32> = None;
    let mut json: f32 = 0.0;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/csv" => csv = Some(csv.map_or(q, |c| c.max(q))),
            "application/json" | "application/*" | "*/*" | "application/problem+json" => {
                json = json.max(q);
            }
            _ => {}
        }
    }
    csv.is_some_and(|csv| csv > 0.0 && csv >= json)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pair(&'static str, &'static str);

    impl Row for Pair {
        const COLUMNS: &'static [&'static str] = &["name", "value"];
        fn cells(&self) -> Vec<String> {
            vec![self.0.to_owned(), self.1.to_owned()]
        }
    }

    #[test]
    fn a_document_is_the_header_row_then_a_row_per_item_each_ended_by_crlf() {
        assert_eq!(
            document(&[Pair("FREE", "3"), Pair("PRO", "12.50")]),
            "name,value\r\nFREE,3\r\nPRO,12.50\r\n"
        );
        assert_eq!(document::<Pair>(&[]), "name,value\r\n");
    }

    #[test]
    fn fields_with_commas_quotes_line_breaks_or_edge_spaces_are_quoted_and_quotes_doubled() {
        assert_eq!(
            document(&[
                Pair("a,b", "say \"hi\""),
                Pair("two\nlines", "cr\rlf"),
                Pair(" padded", "plain text"),
                Pair("", "trailing "),
            ]),
            "name,value\r\n\
             \"a,b\",\"say \"\"hi\"\"\"\r\n\
             \"two\nlines\",\"cr\rlf\"\r\n\
             \" padded\",plain text\r\n\
             ,\"trailing \"\r\n"
        );
    }

    #[test]
    fn texts_a_spreadsheet_would_run_as_formulas_are_defused_but_numbers_are_not() {
        assert_eq!(
            document(&[
                Pair("=HYPERLINK(\"x\")", "+1+1"),
                Pair("@SUM(A1)", "-cmd"),
                Pair("-12.50", "+3"),
                Pair("-0.000001", "7"),
            ]),
            "name,value\r\n\
             \"'=HYPERLINK(\"\"x\"\")\",'+1+1\r\n\
             '@SUM(A1),'-cmd\r\n\
             -12.50,+3\r\n\
             -0.000001,7\r\n"
        );
    }

    #[test]
    fn csv_is_chosen_only_when_asked_for_and_not_outranked_by_json() {
        assert!(!wants_csv(None));
        assert!(!wants_csv(Some("application/json")));
        assert!(!wants_csv(Some("*/*")));
        assert!(wants_csv(Some("text/csv")));
        assert!(wants_csv(Some("Text/CSV; charset=utf-8")));
        assert!(wants_csv(Some("text/csv, application/json;q=0.5")));
        assert!(wants_csv(Some("application/json;q=0.5, text/csv")));
        assert!(!wants_csv(Some("text/csv;q=0.5, application/json")));
        assert!(!wants_csv(Some("text/csv;q=0")));
        assert!(wants_csv(Some("text/csv, */*;q=0.1")));
    }
}
