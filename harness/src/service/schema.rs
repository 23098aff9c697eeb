//! Schema snapshots of a candidate's database, and the rows in it, read from outside the candidate.
//!
//! Migration clauses are judged on what the database says, not on what the candidate logs: a
//! snapshot is every base table with its columns (type, nullability, default, primary key) as the
//! engine itself reports them (`PRAGMA table_info` on SQLite, `information_schema.columns` on
//! Postgres), and two snapshots diff into added, dropped and changed tables and columns. That diff
//! is the evidence a scenario records. Rows are read with every value cast to text by the engine,
//! so "every row is intact" compares exactly what was stored, whatever the column types.
//!
//! One [`Inspector`] type serves both engines so a scenario written once runs on either.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, Connection, Row};

/// One column, as the engine describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Declared type: SQLite's declared type text (`TEXT`, `DATETIME`), Postgres's
    /// `information_schema` data type (`text`, `timestamp with time zone`, `character varying(64)`).
    pub data_type: String,
    /// True when NULL is allowed.
    pub nullable: bool,
    /// The default expression, if any, as the engine prints it.
    pub default: Option<String>,
    /// True when the column is part of the primary key.
    pub primary_key: bool,
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.data_type)?;
        if !self.nullable {
            write!(f, " NOT NULL")?;
        }
        if let Some(default) = &self.default {
            write!(f, " DEFAULT {default}")?;
        }
        if self.primary_key {
            write!(f, " PK")?;
        }
        Ok(())
    }
}

/// Every base table of a database (views excluded), with its columns in declaration order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Schema {
    /// Table name to columns.
    pub tables: BTreeMap<String, Vec<Column>>,
}

impl Schema {
    /// The columns of `table`, if it exists.
    pub fn table(&self, table: &str) -> Option<&[Column]> {
        self.tables.get(table).map(Vec::as_slice)
    }

    /// Column `column` of `table`, if both exist.
    pub fn column(&self, table: &str, column: &str) -> Option<&Column> {
        self.table(table)?.iter().find(|c| c.name == column)
    }

    /// What changed from `self` to `after`.
    pub fn diff(&self, after: &Schema) -> SchemaDiff {
        let mut diff = SchemaDiff::default();
        for (table, before_cols) in &self.tables {
            let Some(after_cols) = after.tables.get(table) else {
                diff.dropped_tables.push(table.clone());
                continue;
            };
            for col in before_cols {
                match after_cols.iter().find(|c| c.name == col.name) {
                    None => diff.dropped_columns.push((table.clone(), col.clone())),
                    Some(now) if now != col => diff.changed_columns.push((table.clone(), col.clone(), now.clone())),
                    Some(_) => {}
                }
            }
            for col in after_cols {
                if !before_cols.iter().any(|c| c.name == col.name) {
                    diff.added_columns.push((table.clone(), col.clone()));
                }
            }
        }
        diff.added_tables = after
            .tables
            .keys()
            .filter(|t| !self.tables.contains_key(*t))
            .cloned()
            .collect();
        diff
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (table, cols)) in self.tables.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            let cols: Vec<String> = cols.iter().map(Column::to_string).collect();
            write!(f, "{table}({})", cols.join(", "))?;
        }
        Ok(())
    }
}

/// The difference between two snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaDiff {
    /// Tables only in the later snapshot.
    pub added_tables: Vec<String>,
    /// Tables only in the earlier snapshot.
    pub dropped_tables: Vec<String>,
    /// Columns only in the later snapshot (of tables in both).
    pub added_columns: Vec<(String, Column)>,
    /// Columns only in the earlier snapshot (of tables in both).
    pub dropped_columns: Vec<(String, Column)>,
    /// Columns in both whose description differs: (table, before, after).
    pub changed_columns: Vec<(String, Column, Column)>,
}

impl SchemaDiff {
    /// True when nothing was dropped or changed: only tables and columns were added.
    pub fn is_additive(&self) -> bool {
        self.dropped_tables.is_empty() && self.dropped_columns.is_empty() && self.changed_columns.is_empty()
    }

    /// True when the snapshots were identical.
    pub fn is_empty(&self) -> bool {
        self.is_additive() && self.added_tables.is_empty() && self.added_columns.is_empty()
    }
}

impl fmt::Display for SchemaDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "no change");
        }
        let mut parts = Vec::new();
        parts.extend(self.added_tables.iter().map(|t| format!("+table {t}")));
        parts.extend(self.dropped_tables.iter().map(|t| format!("-table {t}")));
        parts.extend(self.added_columns.iter().map(|(t, c)| format!("+{t}.{c}")));
        parts.extend(self.dropped_columns.iter().map(|(t, c)| format!("-{t}.{c}")));
        parts.extend(
            self.changed_columns
                .iter()
                .map(|(t, b, a)| format!("~{t}.{} [{b}] -> [{a}]", b.name)),
        );
        write!(f, "{}", parts.join("; "))
    }
}

/// A connection to a candidate's database, for snapshots, row reads and set-up statements.
#[derive(Debug)]
pub enum Inspector {
    /// A SQLite file.
    Sqlite(SqliteConnection),
    /// A Postgres database.
    Postgres(PgConnection),
}

/// Quote an identifier for either engine.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Inspector {
    /// Open a SQLite file. `create` makes the file when it does not exist yet (for set-up before
    /// the candidate's first boot); otherwise the file must exist. Close the inspector before the
    /// candidate writes, so the two never contend for SQLite's lock.
    pub async fn sqlite(path: &Path, create: bool) -> Result<Inspector, sqlx::Error> {
        let opts = SqliteConnectOptions::new().filename(path).create_if_missing(create);
        Ok(Inspector::Sqlite(SqliteConnection::connect_with(&opts).await?))
    }

    /// Connect to a Postgres database.
    pub async fn postgres(options: &PgConnectOptions) -> Result<Inspector, sqlx::Error> {
        Ok(Inspector::Postgres(PgConnection::connect_with(options).await?))
    }

    /// Run set-up SQL (one or more statements).
    pub async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_string());
        match self {
            Inspector::Sqlite(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop),
            Inspector::Postgres(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop),
        }
    }

    /// Every base table and its columns.
    pub async fn schema(&mut self) -> Result<Schema, sqlx::Error> {
        match self {
            Inspector::Sqlite(conn) => sqlite_schema(conn).await,
            Inspector::Postgres(conn) => postgres_schema(conn).await,
        }
    }

    /// The rows of `table`, `columns` only, each value cast to text by the engine (NULL stays
    /// `None`), ordered by `order_by`.
    pub async fn rows(
        &mut self,
        table: &str,
        columns: &[&str],
        order_by: &str,
    ) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        let cast = |c: &str| match self {
            Inspector::Sqlite(_) => format!("CAST({} AS TEXT)", ident(c)),
            Inspector::Postgres(_) => format!("{}::text", ident(c)),
        };
        let select: Vec<String> = columns.iter().map(|c| cast(c)).collect();
        let sql = AssertSqlSafe(format!(
            "SELECT {} FROM {} ORDER BY {}",
            select.join(", "),
            ident(table),
            ident(order_by)
        ));
        let rows = match self {
            Inspector::Sqlite(conn) => {
                let rows = sqlx::query(sql).fetch_all(conn).await?;
                rows.iter()
                    .map(|r| (0..columns.len()).map(|i| r.try_get::<Option<String>, _>(i)).collect())
                    .collect::<Result<Vec<_>, _>>()?
            }
            Inspector::Postgres(conn) => {
                let rows = sqlx::query(sql).fetch_all(conn).await?;
                rows.iter()
                    .map(|r| (0..columns.len()).map(|i| r.try_get::<Option<String>, _>(i)).collect())
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(rows)
    }

    /// Close the connection.
    pub async fn close(self) -> Result<(), sqlx::Error> {
        match self {
            Inspector::Sqlite(conn) => conn.close().await,
            Inspector::Postgres(conn) => conn.close().await,
        }
    }
}

async fn sqlite_schema(conn: &mut SqliteConnection) -> Result<Schema, sqlx::Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut schema = Schema::default();
    for table in tables {
        let sql = AssertSqlSafe(format!("PRAGMA table_info({})", ident(&table)));
        let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
        let mut cols = Vec::with_capacity(rows.len());
        for row in rows {
            cols.push(Column {
                name: row.try_get("name")?,
                data_type: row.try_get("type")?,
                nullable: row.try_get::<i64, _>("notnull")? == 0,
                default: row.try_get("dflt_value")?,
                primary_key: row.try_get::<i64, _>("pk")? > 0,
            });
        }
        schema.tables.insert(table, cols);
    }
    Ok(schema)
}

const POSTGRES_COLUMNS: &str = "
SELECT c.table_name::text AS table_name, c.column_name::text AS column_name,
       c.data_type::text AS data_type, c.character_maximum_length::int4 AS max_len,
       c.is_nullable::text AS is_nullable, c.column_default::text AS column_default,
       EXISTS (
         SELECT 1 FROM information_schema.table_constraints tc
         JOIN information_schema.key_column_usage k
           ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema
          AND k.table_name = tc.table_name
         WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema
           AND tc.table_name = c.table_name AND k.column_name = c.column_name
       ) AS pk
FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
ORDER BY c.table_name, c.ordinal_position";

async fn postgres_schema(conn: &mut PgConnection) -> Result<Schema, sqlx::Error> {
    let rows = sqlx::query(POSTGRES_COLUMNS).fetch_all(&mut *conn).await?;
    let mut schema = Schema::default();
    for row in rows {
        let table: String = row.try_get("table_name")?;
        let data_type: String = row.try_get("data_type")?;
        let max_len: Option<i32> = row.try_get("max_len")?;
        schema.tables.entry(table).or_default().push(Column {
            name: row.try_get("column_name")?,
            data_type: match max_len {
                Some(n) => format!("{data_type}({n})"),
                None => data_type,
            },
            nullable: row.try_get::<String, _>("is_nullable")? == "YES",
            default: row.try_get("column_default")?,
            primary_key: row.try_get("pk")?,
        });
    }
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            data_type: ty.into(),
            nullable: true,
            default: None,
            primary_key: false,
        }
    }

    #[test]
    fn diff_names_every_kind_of_change() {
        let mut before = Schema::default();
        before
            .tables
            .insert("a".into(), vec![col("x", "TEXT"), col("y", "INTEGER")]);
        before.tables.insert("gone".into(), vec![col("x", "TEXT")]);
        let mut after = Schema::default();
        after
            .tables
            .insert("a".into(), vec![col("x", "INTEGER"), col("z", "TEXT")]);
        after.tables.insert("new".into(), vec![col("x", "TEXT")]);
        let diff = before.diff(&after);
        assert_eq!(diff.added_tables, vec!["new".to_string()]);
        assert_eq!(diff.dropped_tables, vec!["gone".to_string()]);
        assert_eq!(diff.added_columns[0].1.name, "z");
        assert_eq!(diff.dropped_columns[0].1.name, "y");
        assert_eq!(diff.changed_columns[0].2.data_type, "INTEGER");
        assert!(!diff.is_additive());
        assert_eq!(before.diff(&before).to_string(), "no change");
    }

    #[tokio::test]
    async fn sqlite_snapshot_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut db = Inspector::sqlite(&path, true).await.unwrap();
        db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0, b BOOLEAN); INSERT INTO t VALUES ('a', 1, NULL); CREATE VIEW v AS SELECT id FROM t")
            .await
            .unwrap();
        let schema = db.schema().await.unwrap();
        assert_eq!(schema.tables.len(), 1, "views are not tables: {schema}");
        let n = schema.column("t", "n").unwrap();
        assert!(!n.nullable && n.default.as_deref() == Some("0"), "{n}");
        assert!(schema.column("t", "id").unwrap().primary_key);
        let rows = db.rows("t", &["id", "n", "b"], "id").await.unwrap();
        assert_eq!(rows, vec![vec![Some("a".into()), Some("1".into()), None]]);
        db.close().await.unwrap();
    }
}
