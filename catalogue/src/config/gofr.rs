//! GR-CFG: GoFr's configuration clauses, as tables of cases.
//!
//! GoFr reads `./configs/.env`, then overlays `./configs/.<APP_ENV>.env` (or `.local.env` when
//! APP_ENV is unset), and re-applies the real environment on top (quick-start/configuration,
//! guides/twelve-factor-config). The candidate's shipped `configs/` is removed before every case,
//! so each row sees exactly the files it lists. Values are read back through the candidate's
//! `/env` route (`app.Config.Get`); the listen port, the health body and the loader's own log
//! lines are read where the promise is about them.

use harness::verdict::{Failure, Level};

use super::table::EnvChange::{Empty, Set, Unset};
use super::table::Expect::{Json, Line, NoLine, Refuses, Serves, Value};
use super::table::{self, Case, Grade, code, doc};
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs};
use engine::cx::Cx;

/// The GR-CFG clauses.
pub fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GR-CFG-1",
            level: Level::Must,
            promise: "`./configs/.env` (relative to the working directory) is loaded as the base; the app boots without it.",
            doc: DocRef::at("quick-start/configuration", "Configuring Environments in GoFr"),
            method: "Write configs/.env; read a key back and serve on HTTP_PORT taken from the file; boot with configs/ but no .env. The loader's log lines are recorded.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gr_cfg_1),
        },
        Clause {
            id: "GR-CFG-2",
            level: Level::Must,
            promise: "APP_ENV=X overlays `./configs/.X.env` on `.env`: overlay keys win, keys only `.env` has survive.",
            doc: DocRef::at("quick-start/configuration", "Configuring Environments in GoFr"),
            method: "APP_ENV=staging with .env and .staging.env disagreeing on a key and on HTTP_PORT; read keys back; the overlay's port must be the one served.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gr_cfg_2),
        },
        Clause {
            id: "GR-CFG-3",
            level: Level::Must,
            promise: "Without APP_ENV the overlay is `./configs/.local.env`; with APP_ENV set, `.local.env` is not read.",
            doc: DocRef::at("guides/twelve-factor-config", "Local development with `.env`"),
            method: "Boot with .env and .local.env disagreeing, without APP_ENV (local wins) and with APP_ENV=staging (base wins).",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gr_cfg_3),
        },
        Clause {
            id: "GR-CFG-4",
            level: Level::Must,
            promise: "A variable in the real environment beats both files.",
            doc: DocRef::at("guides/twelve-factor-config", "How GoFr loads config"),
            method: "Set a key and HTTP_PORT in the environment with other values in .env and the overlay; read the key back; the environment's port must be the one served.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gr_cfg_4),
        },
        Clause {
            id: "GR-CFG-5",
            level: Level::Info,
            promise: "APP_ENV naming a missing file is ignored silently; the overlay loads even without `.env`.",
            doc: DocRef::at("pkg/gofr/config/godotenv.go", "read"),
            method: "APP_ENV=nosuch with only .env; APP_ENV=staging with only .staging.env; record values and log lines.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gr_cfg_5),
        },
        Clause {
            id: "GR-CFG-6",
            level: Level::Must,
            promise: "APP_ENV may be set in `configs/.local.env` for development, and then picks the override file.",
            doc: DocRef::at("guides/twelve-factor-config", "FAQ: Where do I set APP_ENV?"),
            method: "APP_ENV=staging written in .local.env (and, recorded, in .env) beside a .staging.env; the overlay's key must apply.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gr_cfg_6),
        },
        Clause {
            id: "GR-CFG-7",
            level: Level::Info,
            promise: "A malformed `.env` or overlay file is fatal at boot (exit 1, naming the file).",
            doc: DocRef::at("pkg/gofr/config/godotenv.go", "read"),
            method: "A `BAD!KEY=1` line in .env, then in .staging.env with APP_ENV=staging; record exit status and the FATAL line.",
            needs: Needs::NONE,
            check: check!(gr_cfg_7),
        },
        Clause {
            id: "GR-CFG-8",
            level: Level::Info,
            promise: "With no `./configs` directory the loader looks for `/.env` at the filesystem root.",
            doc: DocRef::at("pkg/gofr/gofr.go", "readConfig"),
            method: "Boot from a working directory without configs/; record the loader's WARN line (nothing is written to /).",
            needs: Needs::NONE,
            check: check!(gr_cfg_8),
        },
        Clause {
            id: "GR-CFG-9",
            level: Level::Info,
            promise: "An empty variable in the real environment masks the file's value.",
            doc: DocRef::at("pkg/gofr/config/godotenv.go", "read"),
            method: "CONF_K=\"\" in the environment with CONF_K in .env and .local.env; record what app.Config.Get returns.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gr_cfg_9),
        },
        Clause {
            id: "GR-CFG-10",
            level: Level::Must,
            promise: "APP_NAME and APP_VERSION (defaults gofr-app and dev) are the name and version in the health body.",
            doc: DocRef::at("references/configs", "App: APP_NAME, APP_VERSION"),
            method: "GET /.well-known/health with neither set, with both in the environment, and with both in configs/.env; compare data.name and data.version.",
            needs: Needs::NONE,
            check: check!(gr_cfg_10),
        },
        Clause {
            id: "GR-CFG-11",
            level: Level::Must,
            promise: "GOFR_TELEMETRY=false, in the environment or in configs, disables the usage ping.",
            doc: DocRef::at("references/configs", "App: GOFR_TELEMETRY"),
            method: "Boot with GOFR_TELEMETRY=false in the environment, then only in configs/.env; after serving, no `GoFr records the number of active servers` line. The default (on) is not provoked: it sends traffic to gofr.dev.",
            needs: Needs::NONE,
            check: check!(gr_cfg_11),
        },
    ]
}

// The checks: each judges its clause's table, graded by the clause's level.

async fn gr_cfg_1(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GR_CFG_1).await
}

async fn gr_cfg_2(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GR_CFG_2).await
}

async fn gr_cfg_3(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GR_CFG_3).await
}

async fn gr_cfg_4(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GR_CFG_4).await
}

async fn gr_cfg_5(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Info), GR_CFG_5).await
}

async fn gr_cfg_6(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GR_CFG_6).await
}

async fn gr_cfg_7(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Info), GR_CFG_7).await
}

async fn gr_cfg_8(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Info), GR_CFG_8).await
}

async fn gr_cfg_9(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Info), GR_CFG_9).await
}

async fn gr_cfg_10(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GR_CFG_10).await
}

async fn gr_cfg_11(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GR_CFG_11).await
}

const LOADED_BASE: &str = "Loaded config from file: ./configs/.env";

const GR_CFG_1: &[Case] = &[
    Case {
        name: "configs/.env present",
        files: &[("configs/.env", "CONF_K=base\n")],
        env: &[],
        want: &[doc(Value("CONF_K", "base")), code(Line(LOADED_BASE))],
    },
    Case {
        name: "HTTP_PORT from configs/.env is the port served",
        files: &[("configs/.env", "HTTP_PORT={port}\n")],
        env: &[("HTTP_PORT", Unset)],
        want: &[doc(Serves)],
    },
    Case {
        name: "configs/ without .env",
        files: &[("configs/.keep", "")],
        env: &[],
        want: &[
            doc(Serves),
            code(Line("Failed to load config from file: ./configs/.env")),
        ],
    },
];

const GR_CFG_2: &[Case] = &[Case {
    name: "APP_ENV=staging overlays .staging.env",
    files: &[
        ("configs/.env", "CONF_K=base\nCONF_BASE_ONLY=b\nHTTP_PORT={other}\n"),
        ("configs/.staging.env", "CONF_K=staging\nHTTP_PORT={port}\n"),
    ],
    env: &[("APP_ENV", Set("staging")), ("HTTP_PORT", Unset)],
    want: &[
        doc(Serves),
        doc(Value("CONF_K", "staging")),
        doc(Value("CONF_BASE_ONLY", "b")),
        code(Line("Loaded config from file: ./configs/.staging.env")),
    ],
}];

const GR_CFG_3: &[Case] = &[
    Case {
        name: "no APP_ENV: .local.env overlays .env",
        files: &[
            ("configs/.env", "CONF_K=base\nCONF_BASE_ONLY=b\n"),
            ("configs/.local.env", "CONF_K=local\n"),
        ],
        env: &[],
        want: &[
            doc(Value("CONF_K", "local")),
            doc(Value("CONF_BASE_ONLY", "b")),
            code(Line("Loaded config from file: ./configs/.local.env")),
        ],
    },
    Case {
        name: "APP_ENV=staging: .local.env is not read",
        files: &[
            ("configs/.env", "CONF_K=base\n"),
            ("configs/.local.env", "CONF_K=local\n"),
            ("configs/.staging.env", "CONF_STAGING_ONLY=s\n"),
        ],
        env: &[("APP_ENV", Set("staging"))],
        want: &[doc(Value("CONF_K", "base")), doc(Value("CONF_STAGING_ONLY", "s"))],
    },
];

const GR_CFG_4: &[Case] = &[
    Case {
        name: "environment beats .env and .staging.env",
        files: &[
            ("configs/.env", "CONF_K=base\nHTTP_PORT={other}\n"),
            ("configs/.staging.env", "CONF_K=staging\nHTTP_PORT={other}\n"),
        ],
        env: &[("APP_ENV", Set("staging")), ("CONF_K", Set("from-env"))],
        want: &[doc(Serves), doc(Value("CONF_K", "from-env"))],
    },
    Case {
        name: "environment beats .env and .local.env",
        files: &[
            ("configs/.env", "CONF_K=base\n"),
            ("configs/.local.env", "CONF_K=local\n"),
        ],
        env: &[("CONF_K", Set("from-env"))],
        want: &[doc(Value("CONF_K", "from-env"))],
    },
];

const GR_CFG_5: &[Case] = &[
    Case {
        name: "APP_ENV=nosuch",
        files: &[("configs/.env", "CONF_K=base\n")],
        env: &[("APP_ENV", Set("nosuch"))],
        want: &[
            code(Value("CONF_K", "base")),
            code(NoLine(".nosuch.env")),
            code(Line(LOADED_BASE)),
        ],
    },
    Case {
        name: "overlay without .env",
        files: &[("configs/.staging.env", "CONF_K=staging\n")],
        env: &[("APP_ENV", Set("staging"))],
        want: &[
            code(Value("CONF_K", "staging")),
            code(Line("Failed to load config from file: ./configs/.env")),
        ],
    },
];

const GR_CFG_6: &[Case] = &[
    Case {
        name: "APP_ENV=staging written in .local.env",
        files: &[
            ("configs/.env", "CONF_K=base\n"),
            ("configs/.local.env", "APP_ENV=staging\n"),
            ("configs/.staging.env", "CONF_K=staging\n"),
        ],
        env: &[],
        want: &[doc(Value("CONF_K", "staging")), code(Value("APP_ENV", "staging"))],
    },
    Case {
        name: "APP_ENV=staging written in .env",
        files: &[
            ("configs/.env", "APP_ENV=staging\nCONF_K=base\n"),
            ("configs/.staging.env", "CONF_K=staging\n"),
        ],
        env: &[],
        want: &[code(Value("CONF_K", "base")), code(Value("APP_ENV", "staging"))],
    },
];

const GR_CFG_7: &[Case] = &[
    Case {
        name: "malformed .env",
        files: &[("configs/.env", "CONF_K=base\nBAD!KEY=1\n")],
        env: &[],
        want: &[code(Refuses(
            Some(1),
            &["Failed to load config from file: ./configs/.env"],
        ))],
    },
    Case {
        name: "malformed .staging.env",
        files: &[
            ("configs/.env", "CONF_K=base\n"),
            ("configs/.staging.env", "BAD!KEY=1\n"),
        ],
        env: &[("APP_ENV", Set("staging"))],
        want: &[code(Refuses(
            Some(1),
            &["Failed to load config from file: ./configs/.staging.env"],
        ))],
    },
];

const GR_CFG_8: &[Case] = &[Case {
    name: "no configs/ directory",
    files: &[],
    env: &[],
    want: &[code(Serves), code(Line("Failed to load config from file: /.env"))],
}];

const GR_CFG_9: &[Case] = &[Case {
    name: "CONF_K=\"\" in the environment",
    files: &[
        ("configs/.env", "CONF_K=base\n"),
        ("configs/.local.env", "CONF_K=local\n"),
    ],
    env: &[("CONF_K", Empty)],
    want: &[code(Value("CONF_K", ""))],
}];

const HEALTH: &str = "/.well-known/health";

const GR_CFG_10: &[Case] = &[
    Case {
        name: "neither set",
        files: &[("configs/.keep", "")],
        env: &[("APP_NAME", Unset), ("APP_VERSION", Unset)],
        want: &[
            doc(Json(HEALTH, "/data/name", "gofr-app")),
            doc(Json(HEALTH, "/data/version", "dev")),
        ],
    },
    Case {
        name: "both in the environment",
        files: &[("configs/.env", "APP_NAME=from-file\nAPP_VERSION=0.0.1-file\n")],
        env: &[("APP_NAME", Set("from-env")), ("APP_VERSION", Set("9.9.9-env"))],
        want: &[
            doc(Json(HEALTH, "/data/name", "from-env")),
            doc(Json(HEALTH, "/data/version", "9.9.9-env")),
        ],
    },
    Case {
        name: "both in configs/.env",
        files: &[("configs/.env", "APP_NAME=from-file\nAPP_VERSION=0.0.1-file\n")],
        env: &[],
        want: &[
            doc(Json(HEALTH, "/data/name", "from-file")),
            doc(Json(HEALTH, "/data/version", "0.0.1-file")),
        ],
    },
];

const TELEMETRY_LINE: &str = "GoFr records the number of active servers";

const GR_CFG_11: &[Case] = &[
    Case {
        name: "GOFR_TELEMETRY=false in the environment",
        files: &[("configs/.keep", "")],
        env: &[("GOFR_TELEMETRY", Set("false"))],
        want: &[doc(NoLine(TELEMETRY_LINE))],
    },
    Case {
        name: "GOFR_TELEMETRY=false only in configs/.env",
        files: &[("configs/.env", "GOFR_TELEMETRY=false\n")],
        env: &[("GOFR_TELEMETRY", Unset)],
        want: &[doc(NoLine(TELEMETRY_LINE))],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_clause_declares_the_knobs_its_table_reads() {
        table::assert_declared_knobs(
            &clauses(),
            &[
                ("GR-CFG-1", GR_CFG_1),
                ("GR-CFG-2", GR_CFG_2),
                ("GR-CFG-3", GR_CFG_3),
                ("GR-CFG-4", GR_CFG_4),
                ("GR-CFG-5", GR_CFG_5),
                ("GR-CFG-6", GR_CFG_6),
                ("GR-CFG-7", GR_CFG_7),
                ("GR-CFG-8", GR_CFG_8),
                ("GR-CFG-9", GR_CFG_9),
                ("GR-CFG-10", GR_CFG_10),
                ("GR-CFG-11", GR_CFG_11),
            ],
        );
    }
}
