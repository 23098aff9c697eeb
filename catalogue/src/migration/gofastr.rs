//! GoFastr's boot auto-migration clauses (gofastr.md §D): `App.Start` creates missing tables and
//! adds missing columns, and never drops, renames or retypes.
//!
//! The upgrade clauses (GF-MIG-2..6) share one scenario, [`upgrade`]: boot the reference build
//! (schema v1) on a fresh database, write rows through the public `items` CRUD API, stop, snapshot,
//! boot the same source built as v2 (fields added, one removed, one renamed through
//! `EntityConfig.Renames`, one retyped), list the entity through its API, stop, snapshot again.
//! Each clause then judges its own part of the same before/after diff, on SQLite and on Postgres:
//! GF-MIG-2 the columns v2 gains (the rename's new name among them) and the listing, GF-MIG-6 the
//! old name of the rename. The failure-path clauses (GF-MIG-7..9) are in `gofastr_boot.rs`.

use harness::candidate::Variant;
use harness::probe::Exchange;
use harness::service::schema::{Column, Schema, SchemaDiff};
use harness::verdict::{Failure, Level};

use super::*;
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs, Service};
use engine::cx::{Cx, Db};

/// The columns schema v1 gives `items`: its three fields plus the three the framework injects.
const V1_COLUMNS: [&str; 6] = ["id", "name", "qty", "label", "created_at", "updated_at"];

/// The columns v2 declares that v1's table lacks, each of which the v2 boot must add
/// (migrations.md › Auto-migrate path: boot "adds missing columns to existing tables ... to make
/// the database match the registered entities"). `title` is the new name of v2's declared rename
/// `label -> title`: boot never renames, and "sees a rename as add+drop", of which it applies the
/// add.
const V2_ADDED: [&str; 4] = ["note", "sku", "flag", "title"];

/// The old name of v2's declared rename (`EntityConfig.Renames{"label": "title"}`).
const RENAMED_FROM: &str = "label";

/// The new name of v2's declared rename.
const RENAMED_TO: &str = "title";

/// Rows written through the CRUD API before the upgrade (one with a NULL, so NULLs survive too).
const V1_ROWS: [&str; 3] = [
    r#"{"name":"alpha","qty":1,"label":"first"}"#,
    r#"{"name":"beta","qty":2,"label":"second"}"#,
    r#"{"name":"gamma","label":"third"}"#,
];

/// GoFastr's MIG clauses.
pub(super) fn clauses() -> Vec<Clause> {
    let all = vec![
        Clause {
            id: "GF-MIG-1",
            level: Level::Must,
            promise: "App.Start creates the missing table of every registered entity.",
            doc: DocRef::at("deploy.md", "Migrations"),
            method: "Boot on a fresh SQLite file and a fresh Postgres database; read the items table's columns from PRAGMA table_info / information_schema.columns.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable],
                ..Needs::NONE
            },
            check: check!(creates_missing_tables),
        },
        Clause {
            id: "GF-MIG-2",
            level: Level::Must,
            promise: "A field added to an entity becomes ALTER TABLE ADD COLUMN on the next boot (the new name of a declared rename too: boot sees a rename as add+drop and applies the add), the existing rows are kept, and the entity is served with the new columns.",
            doc: DocRef::at("migrations.md", "Auto-migrate path"),
            method: "Boot v1, write rows through POST /items, stop; boot v2 (adds note, sku, flag, and title, the new name of the declared rename label -> title) on the same database; each must be a column after the boot, every row's v1 columns unchanged, and v2's GET /items must answer 200 listing the v1 rows.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable, Knob::SchemaVariantVar],
                ..Needs::NONE
            },
            check: check!(adds_new_columns),
        },
        Clause {
            id: "GF-MIG-3",
            level: Level::Must,
            promise: "A new required field without a default is added nullable; one with a default is added NOT NULL and existing rows get the default.",
            doc: DocRef::at("migrations.md", "Auto-migrate path"),
            method: "Upgrade v1 -> v2 over existing rows; sku (required, no default) must be nullable, flag (required, default false) NOT NULL with a default, every existing row holding it.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable, Knob::SchemaVariantVar],
                ..Needs::NONE
            },
            check: check!(required_fields_added_safely),
        },
        Clause {
            id: "GF-MIG-4",
            level: Level::Must,
            promise: "Boot never drops a column or a table: a field removed from the entity keeps its column and data.",
            doc: DocRef::at("deploy.md", "Migrations"),
            method: "Upgrade v1 -> v2 (qty removed); no table or column may be missing after, qty's values intact, and v2 boots.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable, Knob::SchemaVariantVar],
                ..Needs::NONE
            },
            check: check!(never_drops),
        },
        Clause {
            id: "GF-MIG-5",
            level: Level::Must,
            promise: "Boot never retypes a column: a field whose type changed keeps its live type and data.",
            doc: DocRef::at("deploy.md", "Migrations"),
            method: "Upgrade v1 -> v2 (name String -> Int); no column's type, nullability or default may change, name's values intact, and v2 boots.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable, Knob::SchemaVariantVar],
                ..Needs::NONE
            },
            check: check!(never_retypes),
        },
        Clause {
            id: "GF-MIG-6",
            level: Level::Must,
            promise: "Boot never renames a column, even with a rename declared in EntityConfig.Renames: the old column keeps its name, type and values, and none of them move to the new name.",
            doc: DocRef::at("migrations.md", "Migrations"),
            method: "Upgrade v1 -> v2 (Renames label -> title); label must be exactly as it was, with its values; where title exists after the boot, no row may hold label's value in it (boot applies a rename's add, never its data move). Whether title exists is GF-MIG-2's to grade.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable, Knob::SchemaVariantVar],
                ..Needs::NONE
            },
            check: check!(never_renames),
        },
        Clause {
            id: "GF-MIG-10",
            level: Level::Must,
            promise: "With WithoutAutoMigrate(), Start performs no entity DDL and still boots.",
            doc: DocRef::at("migrations.md", "Running both paths (and turning boot-time DDL off)"),
            method: "Boot on fresh databases with HARNESS_NO_AUTOMIGRATE=1; the app must serve and items must not exist.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable],
                ..Needs::NONE
            },
            check: check!(without_auto_migrate),
        },
        Clause {
            id: "GF-MIG-11",
            level: Level::Must,
            promise: "The dialect is detected from the connection: Postgres gets Postgres DDL, SQLite gets SQLite DDL.",
            doc: DocRef::at("migrations.md", "Auto-migrate path"),
            method: "Boot on each engine; Postgres: items.id DEFAULT gen_random_uuid() and created_at timestamp with time zone; SQLite: created_at DATETIME and no id default.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable],
                ..Needs::NONE
            },
            check: check!(dialect_detected),
        },
    ];
    all
}

/// The entity table the candidate declares (`entity_table` knob). Also read by GF-PORT-4,
/// through [`waits_for_held_lock`](super::waits_for_held_lock).
pub(super) fn items_table(cx: &Cx) -> Result<String, Failure> {
    cx.knob(Knob::EntityTable)
}

/// The candidate built with schema v2 (`schema_variant_var` knob).
fn v2(cx: &Cx) -> Result<Variant, Failure> {
    let var = cx.knob(Knob::SchemaVariantVar)?;
    Ok(Variant {
        label: "v2".into(),
        link_x: vec![(var, "v2".into())],
        ..Variant::default()
    })
}

pub(super) fn missing_table(table: &str, db: Db, schema: &Schema) -> Failure {
    Failure::violation(
        format!("table {table} exists on {} after boot", db.name()),
        format!(
            "tables: {}",
            schema.tables.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    )
}

async fn creates_missing_tables(cx: &mut Cx) -> Result<(), Failure> {
    let table = items_table(cx)?;
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let mut app = cx.boot(Some(&attached)).await?;
        stop(cx, &mut app).await?;
        let schema = snapshot(cx, &attached, &format!("after first boot on {}", db.name())).await?;
        let Some(cols) = schema.table(&table) else {
            return Err(missing_table(&table, db, &schema));
        };
        let missing: Vec<&str> = V1_COLUMNS
            .iter()
            .copied()
            .filter(|c| !cols.iter().any(|col| col.name == *c))
            .collect();
        if !missing.is_empty() {
            return Err(Failure::violation(
                format!("{table} on {} has the columns {}", db.name(), V1_COLUMNS.join(", ")),
                format!("missing {}: {table}({})", missing.join(", "), fmt_cols(cols)),
            ));
        }
    }
    Ok(())
}

pub(super) fn fmt_cols(cols: &[Column]) -> String {
    cols.iter().map(Column::to_string).collect::<Vec<_>>().join(", ")
}

/// What one v1 -> v2 upgrade did to the database.
struct Upgrade {
    db: Db,
    table: String,
    before: Schema,
    after: Schema,
    diff: SchemaDiff,
    rows_before: Vec<Vec<Option<String>>>,
    rows_after: Vec<Vec<Option<String>>>,
    /// v2's `GET /<table>`, made right after it booted.
    listed: Exchange,
    attached: Attached,
}

impl Upgrade {
    /// The column after the upgrade, or a violation naming it.
    fn after_column(&self, name: &str) -> Result<&Column, Failure> {
        self.after.column(&self.table, name).ok_or_else(|| {
            Failure::violation(
                format!("{}.{name} exists after the v2 boot on {}", self.table, self.db.name()),
                format!(
                    "{}({})",
                    self.table,
                    fmt_cols(self.after.table(&self.table).unwrap_or(&[]))
                ),
            )
        })
    }

    /// Every row written before the upgrade still holds the same values in the v1 columns.
    fn rows_intact(&self) -> Result<(), Failure> {
        if self.rows_before == self.rows_after {
            return Ok(());
        }
        Err(Failure::violation(
            format!(
                "every {} row keeps its values across the upgrade on {}: {}",
                self.table,
                self.db.name(),
                fmt_rows(&self.rows_before)
            ),
            fmt_rows(&self.rows_after),
        ))
    }
}

/// Boot v1 on a fresh `db`, write [`V1_ROWS`], stop, snapshot; boot v2 on the same database, list
/// the entity through its API, stop, snapshot again. The schemas, their diff and the rows go into
/// the evidence. A v2 that does not boot is a violation (boot must not be broken by the change).
async fn upgrade(cx: &mut Cx, db: Db) -> Result<Upgrade, Failure> {
    let table = items_table(cx)?;
    let variant = v2(cx)?;
    // Build v2 first, so its (one-off) build time never counts against a running candidate.
    cx.build_variant(&variant).await?;
    let attached = cx.database(db).await?;
    let mut app = cx.boot(Some(&attached)).await?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let path = format!("/{table}");
    for row in V1_ROWS {
        let ex = cx
            .send(
                "POST",
                addr,
                &path,
                &[("Content-Type", "application/json")],
                Some(row.into()),
            )
            .await?;
        if ex.status() != Some(201) {
            return Err(Failure::harness(format!(
                "could not write the rows the clause needs through POST {path}: {}",
                ex.summary()
            )));
        }
    }
    stop(cx, &mut app).await?;
    let on = db.name();
    let before = snapshot(cx, &attached, &format!("v1 on {on}")).await?;
    let rows_before = rows(cx, &attached, &format!("v1 on {on}"), &table, &V1_COLUMNS, "id").await?;

    let mut app = cx.boot_variant(Some(&attached), &variant, |_| Ok(())).await?;
    cx.note("v2", format!("booted on {on} over the v1 database"));
    let listed = cx.get(&app, &path).await?;
    stop(cx, &mut app).await?;
    let after = snapshot(cx, &attached, &format!("v2 on {on}")).await?;
    let present: Vec<&str> = V1_COLUMNS
        .iter()
        .copied()
        .filter(|c| after.column(&table, c).is_some())
        .collect();
    if present.len() != V1_COLUMNS.len() {
        // GF-MIG-4 judges the loss; the other clauses still compare what is left.
        cx.note("v1 columns gone after v2", format!("kept only {}", present.join(", ")));
    }
    let rows_after = if present.len() == V1_COLUMNS.len() {
        rows(cx, &attached, &format!("v2 on {on}"), &table, &V1_COLUMNS, "id").await?
    } else {
        Vec::new()
    };
    let diff = before.diff(&after);
    cx.note(format!("schema diff v1 -> v2 on {on}"), &diff);
    Ok(Upgrade {
        db,
        table,
        before,
        after,
        diff,
        rows_before,
        rows_after,
        listed,
        attached,
    })
}

/// Run [`upgrade`] on both engines and `judge` each.
async fn judge_upgrades(cx: &mut Cx, judge: impl Fn(&mut Cx, &Upgrade) -> Result<(), Failure>) -> Result<(), Failure> {
    for db in Db::BOTH {
        let up = upgrade(cx, db).await?;
        judge(cx, &up)?;
    }
    Ok(())
}

/// Judged on both engines before failing, so the verdict says where the columns were missing.
async fn adds_new_columns(cx: &mut Cx) -> Result<(), Failure> {
    let mut expected = Vec::new();
    let mut actual = Vec::new();
    for db in Db::BOTH {
        let up = upgrade(cx, db).await?;
        let on = db.name();
        let missing: Vec<&str> = V2_ADDED
            .iter()
            .copied()
            .filter(|c| up.after.column(&up.table, c).is_none())
            .collect();
        if !missing.is_empty() {
            expected.push(format!(
                "{}.{} exist after the v2 boot on {on}",
                up.table,
                V2_ADDED.join(", ")
            ));
            actual.push(format!(
                "missing {}: {}({})",
                missing.join(", "),
                up.table,
                fmt_cols(up.after.table(&up.table).unwrap_or(&[]))
            ));
        }
        // The entity served over the upgraded table: the listing answers and carries every row
        // written before the upgrade (each by its id).
        let body = up.listed.body().unwrap_or_default();
        let unlisted = up
            .rows_before
            .iter()
            .filter_map(|r| r[0].as_deref())
            .any(|id| !body.contains(id));
        if up.listed.status() != Some(200) || unlisted {
            expected.push(format!(
                "v2 answers GET /{} with 200, listing the {} rows written before the upgrade, on {on}",
                up.table,
                up.rows_before.len()
            ));
            actual.push(up.listed.summary());
        }
        match up.rows_intact() {
            Ok(()) => {}
            Err(Failure::Violation(v)) => {
                expected.push(v.expected);
                actual.push(v.actual);
            }
            Err(harness) => return Err(harness),
        }
    }
    if expected.is_empty() {
        return Ok(());
    }
    Err(Failure::violation(expected.join("\n"), actual.join("\n")))
}

async fn required_fields_added_safely(cx: &mut Cx) -> Result<(), Failure> {
    for db in Db::BOTH {
        let up = upgrade(cx, db).await?;
        let sku = up.after_column("sku")?;
        if !sku.nullable {
            return Err(Failure::violation(
                format!("sku (required, no default) is added nullable on {}", db.name()),
                sku.to_string(),
            ));
        }
        let flag = up.after_column("flag")?;
        if flag.nullable || flag.default.is_none() {
            return Err(Failure::violation(
                format!(
                    "flag (required, default false) is added NOT NULL with a default on {}",
                    db.name()
                ),
                flag.to_string(),
            ));
        }
        let flags = rows(
            cx,
            &up.attached,
            &format!("flag on {}", db.name()),
            &up.table,
            &["flag"],
            "id",
        )
        .await?;
        let defaulted = |v: &Option<String>| matches!(v.as_deref(), Some("0" | "false" | "FALSE" | "f"));
        if flags.len() != V1_ROWS.len() || !flags.iter().all(|r| defaulted(&r[0])) {
            return Err(Failure::violation(
                format!("every existing row holds flag's default (false) on {}", db.name()),
                fmt_rows(&flags),
            ));
        }
    }
    Ok(())
}

async fn never_drops(cx: &mut Cx) -> Result<(), Failure> {
    judge_upgrades(cx, |_, up| {
        if !up.diff.dropped_tables.is_empty() || !up.diff.dropped_columns.is_empty() {
            return Err(Failure::violation(
                format!("no table or column is dropped by the v2 boot on {}", up.db.name()),
                up.diff.to_string(),
            ));
        }
        up.rows_intact()
    })
    .await
}

async fn never_retypes(cx: &mut Cx) -> Result<(), Failure> {
    judge_upgrades(cx, |_, up| {
        if !up.diff.changed_columns.is_empty() {
            return Err(Failure::violation(
                format!(
                    "no existing column changes type, nullability or default on {}",
                    up.db.name()
                ),
                up.diff.to_string(),
            ));
        }
        let name = up.after_column("name")?;
        if up.before.column(&up.table, "name") != Some(name) {
            return Err(Failure::violation("name keeps its v1 type", name.to_string()));
        }
        up.rows_intact()
    })
    .await
}

async fn never_renames(cx: &mut Cx) -> Result<(), Failure> {
    for db in Db::BOTH {
        let up = upgrade(cx, db).await?;
        let on = db.name();
        let old = up.after_column(RENAMED_FROM)?;
        if up.before.column(&up.table, RENAMED_FROM) != Some(old) {
            return Err(Failure::violation(
                format!("{RENAMED_FROM} is left exactly as it was on {on}"),
                old.to_string(),
            ));
        }
        up.rows_intact()?;
        // Recorded either way; whether the new name was added is GF-MIG-2's to grade.
        let Some(new) = up.after.column(&up.table, RENAMED_TO) else {
            cx.note(format!("{RENAMED_TO} after v2 on {on}"), "absent");
            continue;
        };
        cx.note(format!("{RENAMED_TO} after v2 on {on}"), new);
        let pairs = rows(
            cx,
            &up.attached,
            &format!("{RENAMED_FROM} and {RENAMED_TO} after v2 on {on}"),
            &up.table,
            &["id", RENAMED_FROM, RENAMED_TO],
            "id",
        )
        .await?;
        let moved: Vec<&Vec<Option<String>>> = pairs.iter().filter(|r| r[1].is_some() && r[1] == r[2]).collect();
        if !moved.is_empty() {
            return Err(Failure::violation(
                format!(
                    "none of {RENAMED_FROM}'s values is moved to {RENAMED_TO} by the v2 boot on {on} (boot applies a rename's add, not its data move)"
                ),
                format!(
                    "{} row(s) hold their {RENAMED_FROM} in {RENAMED_TO}: {}",
                    moved.len(),
                    fmt_rows(&moved.into_iter().cloned().collect::<Vec<_>>())
                ),
            ));
        }
    }
    Ok(())
}

async fn without_auto_migrate(cx: &mut Cx) -> Result<(), Failure> {
    let table = items_table(cx)?;
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let mut app = cx
            .boot_with(Some(&attached), |spec| {
                spec.set("HARNESS_NO_AUTOMIGRATE", "1");
                Ok(())
            })
            .await?;
        stop(cx, &mut app).await?;
        let schema = snapshot(cx, &attached, &format!("WithoutAutoMigrate on {}", db.name())).await?;
        if let Some(cols) = schema.table(&table) {
            return Err(Failure::violation(
                format!("no {table} table after a WithoutAutoMigrate boot on {}", db.name()),
                format!("{table}({})", fmt_cols(cols)),
            ));
        }
    }
    Ok(())
}

async fn dialect_detected(cx: &mut Cx) -> Result<(), Failure> {
    let table = items_table(cx)?;
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let mut app = cx.boot(Some(&attached)).await?;
        stop(cx, &mut app).await?;
        let schema = snapshot(cx, &attached, &format!("after boot on {}", db.name())).await?;
        let col = |name: &str| {
            schema
                .column(&table, name)
                .cloned()
                .ok_or_else(|| missing_table(&format!("{table}.{name}"), db, &schema))
        };
        let (id, created) = (col("id")?, col("created_at")?);
        let (ok, expected) = match db {
            Db::Postgres => (
                id.default.as_deref().is_some_and(|d| d.contains("gen_random_uuid"))
                    && created.data_type == "timestamp with time zone",
                "Postgres DDL: id DEFAULT gen_random_uuid(), created_at timestamp with time zone",
            ),
            Db::Sqlite => (
                id.default.is_none() && created.data_type.eq_ignore_ascii_case("DATETIME"),
                "SQLite DDL: id without a default, created_at DATETIME",
            ),
        };
        if !ok {
            return Err(Failure::violation(
                format!("{expected} on {}", db.name()),
                format!("{id}; {created}"),
            ));
        }
    }
    Ok(())
}
