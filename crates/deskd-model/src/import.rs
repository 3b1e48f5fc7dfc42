//! Reading a user import file, shared by `deskd import` and the admin pages' import: CSV (a
//! header row) or JSON Lines, row by row with their line numbers, the checks made before anything
//! is sent, batches of [`BATCH`], what a job's result says of each row, and the failures file.
//!
//! Pure: the caller says where the bytes come from ([`Source`]) and where failures go.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::sync::Arc;

use serde_json::{Map, Value, json};

/// Users a request carries (create_or_update_many takes at most 100).
pub const BATCH: usize = 100;

/// Where a file's bytes come from; it is read more than once (validation, then the import).
pub trait Source {
    fn open(&self) -> Result<Box<dyn Read>, String>;
}

/// A file held in memory (an upload).
impl Source for Arc<[u8]> {
    fn open(&self) -> Result<Box<dyn Read>, String> {
        Ok(Box::new(std::io::Cursor::new(self.clone())))
    }
}

/// One input row: its line in the file, the user object to send, and its text for the
/// failures file.
#[derive(Clone, Debug)]
pub struct Row {
    pub line: usize,
    pub user: Map<String, Value>,
    pub raw: Vec<String>,
}

/// CSV or JSON Lines: `format`, else the file name, else the first character (`{` → JSON
/// Lines). True for CSV.
pub fn is_csv(format: Option<&str>, name: &str, source: &dyn Source) -> Result<bool, String> {
    let name = name.to_ascii_lowercase();
    Ok(match format {
        Some("csv") => true,
        Some("jsonl" | "json" | "ndjson") => false,
        Some(other) => return Err(format!("format {other}: use csv or jsonl")),
        None if name.ends_with(".csv") => true,
        None if name.ends_with(".jsonl")
            || name.ends_with(".json")
            || name.ends_with(".ndjson") =>
        {
            false
        }
        None => {
            let mut first = [0u8; 256];
            let n = source.open()?.read(&mut first).map_err(|e| e.to_string())?;
            first[..n].iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{')
        }
    })
}

/// The CSV header row, trimmed.
pub fn csv_header(source: &dyn Source) -> Result<Vec<String>, String> {
    let mut reader = csv::Reader::from_reader(source.open()?);
    Ok(reader
        .headers()
        .map_err(|e| format!("header: {e}"))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect())
}

/// What a job's result entry says of one row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    /// The error and its details, as the failures file records them.
    Failed(String),
}

/// A job result entry, as far as [`outcome`] reads it.
#[derive(Clone, Debug, Default)]
pub struct ItemResult {
    pub index: Option<usize>,
    pub status: Option<String>,
    pub error: Option<String>,
    pub details: Option<Value>,
}

impl ItemResult {
    pub fn from_json(v: &Value) -> ItemResult {
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        ItemResult {
            index: v["index"].as_u64().map(|i| i as usize),
            status: s("status"),
            error: s("error"),
            details: v.get("details").filter(|d| !d.is_null()).cloned(),
        }
    }
}

/// The outcome of row `i` of a batch, from its job's results (by `index`, else by position).
pub fn outcome(results: &[ItemResult], i: usize) -> Outcome {
    let r = results
        .iter()
        .find(|r| r.index == Some(i))
        .or(results.get(i));
    match r {
        Some(r) if r.error.is_none() && r.status.as_deref() == Some("Created") => Outcome::Created,
        Some(r) if r.error.is_none() => Outcome::Updated,
        Some(r) => {
            let detail = r
                .details
                .as_ref()
                .map(|d| {
                    d.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| d.to_string())
                })
                .unwrap_or_default();
            Outcome::Failed(format!("{}: {detail}", r.error.clone().unwrap_or_default()))
        }
        None => Outcome::Failed("no result for this row".into()),
    }
}

pub type Rows = Box<dyn Iterator<Item = Result<Row, String>>>;

/// The rows of the file, one at a time. CSV columns map to user fields: `organization` →
/// `organization.name`, `tags` split on `;` or spaces, `user_fields.KEY` → `user_fields[KEY]`;
/// an `error` column (from a failures file) is ignored, empty cells are left out.
pub fn read_rows(source: &dyn Source, header: Option<&[String]>) -> Result<Rows, String> {
    let file = source.open()?;
    let Some(header) = header else {
        let lines = std::io::BufReader::new(file).lines().enumerate();
        return Ok(Box::new(lines.filter_map(|(i, line)| {
            let line = match line {
                Ok(l) if l.trim().is_empty() => return None,
                Ok(l) => l,
                Err(e) => return Some(Err(format!("line {}: {e}", i + 1))),
            };
            Some(match serde_json::from_str(&line) {
                Ok(Value::Object(mut user)) => {
                    user.remove("error");
                    Ok(Row {
                        line: i + 1,
                        user,
                        raw: vec![line],
                    })
                }
                Ok(_) => Err(format!("line {}: not a JSON object", i + 1)),
                Err(e) => Err(format!("line {}: {e}", i + 1)),
            })
        })));
    };
    let header = header.to_vec();
    let records = csv::Reader::from_reader(file).into_records();
    Ok(Box::new(records.map(move |record| {
        let record = record.map_err(|e| match e.position() {
            Some(p) => format!("line {}: {e}", p.line()),
            None => e.to_string(),
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let mut user = Map::new();
        for (col, cell) in header.iter().zip(record.iter()) {
            let cell = cell.trim();
            if cell.is_empty() || col == "error" {
                continue;
            }
            match col.as_str() {
                "organization" => {
                    user.insert("organization".into(), json!({ "name": cell }));
                }
                "tags" => {
                    let tags: Vec<&str> =
                        cell.split([';', ' ']).filter(|t| !t.is_empty()).collect();
                    user.insert("tags".into(), json!(tags));
                }
                "verified" | "suspended" | "moderator" | "skip_verify_email" => {
                    user.insert(col.clone(), json!(matches!(cell, "true" | "1" | "yes")));
                }
                c if c.starts_with("user_fields.") => {
                    let fields = user.entry("user_fields").or_insert_with(|| json!({}));
                    fields[&c["user_fields.".len()..]] = json!(cell);
                }
                c => {
                    user.insert(c.to_owned(), json!(cell));
                }
            }
        }
        Ok(Row {
            line,
            user,
            raw: record.iter().map(str::to_owned).collect(),
        })
    })))
}

/// Local checks before anything is sent: a name, an email or external id to match on, well-formed
/// emails, and no email or external id twice in the file (remembered as 64-bit hashes, so a
/// million rows fit in a few megabytes). Returns the row count and the problems.
pub fn validate(
    source: &dyn Source,
    header: Option<&[String]>,
) -> Result<(usize, Vec<String>), String> {
    use std::hash::{Hash, Hasher};
    let hash = |s: &str| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        crate::text::normalize(s).hash(&mut h);
        h.finish()
    };
    let mut problems = Vec::new();
    // (hash of the normalised value, line); the low bit of the hash says email or external_id.
    let mut seen: Vec<(u64, u32)> = Vec::new();
    let mut count = 0;
    for row in read_rows(source, header)? {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        count += 1;
        let text = |k: &str| {
            row.user
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let (name, email, external) = (
            text("name"),
            text("email"),
            row.user.get("external_id").filter(|v| !v.is_null()),
        );
        let _ = &hash;
        if name.is_none() {
            problems.push(format!("line {}: name is missing", row.line));
        }
        if email.is_none() && external.is_none() {
            problems.push(format!(
                "line {}: give an email or an external_id to match the user by",
                row.line
            ));
        }
        if let Some(e) = email {
            if !crate::text::is_valid_email(e) {
                problems.push(format!(
                    "line {}: email {e} is not properly formatted",
                    row.line
                ));
            } else {
                seen.push((hash(e) & !1, row.line as u32));
            }
        }
        if let Some(x) = external {
            let x = x
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| x.to_string());
            seen.push((hash(&x) | 1, row.line as u32));
        }
    }
    seen.sort_unstable();
    let dups: HashMap<usize, (bool, u32)> = seen
        .windows(2)
        .filter(|p| p[0].0 == p[1].0)
        .map(|p| (p[1].1 as usize, (p[0].0 & 1 == 0, p[0].1)))
        .collect();
    if !dups.is_empty() {
        // Rare: read the file once more for the repeated values, to name them.
        for row in read_rows(source, header)?.flatten() {
            if let Some((is_email, first)) = dups.get(&row.line) {
                let key = if *is_email { "email" } else { "external_id" };
                let value = row
                    .user
                    .get(key)
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_default();
                problems.push(format!(
                    "line {}: {key} {} is also on line {first}",
                    row.line,
                    value.trim()
                ));
            }
        }
    }
    Ok((count, problems))
}

/// Failed rows in the input's own format, with an `error` column (CSV) or key (JSON Lines), so
/// the file can be fixed and imported again (the `error` column is ignored then).
pub enum FailureWriter<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Jsonl(W),
}

impl<W: Write> FailureWriter<W> {
    /// A writer for failed rows of a file with `header` (CSV) or none (JSON Lines); `with_header`
    /// is false when appending to a failures file that has its header already.
    pub fn new(out: W, header: Option<&[String]>, with_header: bool) -> Result<Self, String> {
        Ok(match header {
            Some(header) => {
                let mut w = csv::Writer::from_writer(out);
                if with_header {
                    let mut h = header.to_vec();
                    h.retain(|c| c != "error");
                    h.push("error".into());
                    w.write_record(&h).map_err(|e| e.to_string())?;
                }
                FailureWriter::Csv(Box::new(w))
            }
            None => FailureWriter::Jsonl(out),
        })
    }

    /// The output, flushed.
    pub fn into_inner(self) -> Result<W, String> {
        match self {
            FailureWriter::Csv(w) => w.into_inner().map_err(|e| e.to_string()),
            FailureWriter::Jsonl(w) => Ok(w),
        }
    }

    pub fn write(&mut self, row: &Row, error: &str) -> Result<(), String> {
        match self {
            FailureWriter::Csv(w) => {
                let mut rec = row.raw.clone();
                rec.push(error.to_owned());
                w.write_record(&rec).map_err(|e| e.to_string())
            }
            FailureWriter::Jsonl(f) => {
                let mut user = row.user.clone();
                user.insert("error".into(), json!(error));
                writeln!(f, "{}", Value::Object(user)).map_err(|e| e.to_string())
            }
        }
    }

    pub fn flush(&mut self) -> Result<(), String> {
        match self {
            FailureWriter::Csv(w) => w.flush().map_err(|e| e.to_string()),
            FailureWriter::Jsonl(f) => f.flush().map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Arc<[u8]> {
        Arc::from(text.as_bytes().to_vec())
    }

    #[test]
    fn formats_by_flag_name_or_first_character() {
        let json = src("  {\"name\": \"A\"}\n");
        let csv = src("name,email\n");
        assert!(is_csv(Some("csv"), "x.jsonl", &json).unwrap());
        assert!(!is_csv(None, "users.JSONL", &csv).unwrap());
        assert!(!is_csv(None, "upload", &json).unwrap());
        assert!(is_csv(None, "upload", &csv).unwrap());
        assert!(is_csv(Some("xml"), "x", &csv).is_err());
    }

    #[test]
    fn csv_rows_map_columns_and_keep_their_lines() {
        let s = src(
            "name,email,tags,user_fields.plan,organization,error\n\"Ann\nB\",a@x.test,vip;new,gold,Acme,old\n\nBo,b@x.test,,,,\n",
        );
        let header = csv_header(&s).unwrap();
        let rows: Vec<Row> = read_rows(&s, Some(&header))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].user["tags"], json!(["vip", "new"]));
        assert_eq!(rows[0].user["user_fields"], json!({"plan": "gold"}));
        assert_eq!(rows[0].user["organization"], json!({"name": "Acme"}));
        assert!(!rows[0].user.contains_key("error"));
        assert_eq!(rows[1].line, 4, "a quoted newline counts as a line");
        assert!(
            !rows[1].user.contains_key("tags"),
            "empty cells are left out"
        );
    }

    #[test]
    fn validation_names_each_problem_by_line() {
        let s = src(
            "{\"name\": \"A\", \"email\": \"a@x.test\"}\nnot json\n{\"email\": \"b@x.test\"}\n{\"name\": \"C\", \"email\": \"A@X.test\"}\n{\"name\": \"D\"}\n",
        );
        let (count, problems) = validate(&s, None).unwrap();
        assert_eq!(count, 4);
        assert!(
            problems.iter().any(|p| p.starts_with("line 2:")),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"line 3: name is missing".to_owned()),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("line 4: email") && p.ends_with("line 1")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("line 5: give an email")),
            "{problems:?}"
        );
    }

    #[test]
    fn outcomes_by_index_then_position() {
        let results = vec![
            ItemResult::from_json(&json!({"index": 1, "status": "Created"})),
            ItemResult::from_json(
                &json!({"index": 0, "error": "InvalidValue", "details": "Role: is not included in the list"}),
            ),
        ];
        assert_eq!(outcome(&results, 1), Outcome::Created);
        assert_eq!(
            outcome(&results, 0),
            Outcome::Failed("InvalidValue: Role: is not included in the list".into())
        );
        assert_eq!(outcome(&[ItemResult::default()], 0), Outcome::Updated);
        assert_eq!(
            outcome(&[], 0),
            Outcome::Failed("no result for this row".into())
        );
    }

    #[test]
    fn failures_files_keep_the_input_format() {
        let row = Row {
            line: 2,
            user: Map::from_iter([("name".to_owned(), json!("A"))]),
            raw: vec!["A".into(), "a@".into()],
        };
        let header = vec!["name".to_owned(), "email".to_owned(), "error".to_owned()];
        let mut w = FailureWriter::new(Vec::new(), Some(&header), true).unwrap();
        w.write(&row, "bad, very").unwrap();
        let csv = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(csv, "name,email,error\nA,a@,\"bad, very\"\n");
        let mut w = FailureWriter::new(Vec::new(), None, true).unwrap();
        w.write(&row, "bad").unwrap();
        let jsonl = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(jsonl, "{\"name\":\"A\",\"error\":\"bad\"}\n");
    }
}
