//! GF-ENV: GoFastr's environment and `.env` clauses, as tables of cases.
//!
//! GoFastr reads `.env.local`, `.env.<APP_ENV>` and `.env` from the working directory (earlier
//! wins) and never overrides the real environment (dotenv.md). The reference candidate is the
//! `gofastr init` scaffold, which loads the same files itself before `NewApp` (catalogue D20);
//! that is kept as generated, because a scaffolded app is what GoFastr users deploy, and the
//! clauses judge what such a binary does. Values are read back through the candidate's echo
//! endpoint (`os.LookupEnv`); roles, dev surfaces and secrets through probes and boot refusal.

use harness::verdict::{Failure, Level};

use super::table::EnvChange::{Empty, Set, Unset};
use super::table::Expect::{Absent, EchoRoute, Line, NoLine, Refuses, Rejected, Serves, Status, Value};
use super::table::{self, Case, Grade, code, doc};
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs};
use engine::cx::Cx;

/// The GF-ENV clauses.
pub fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-ENV-1",
            level: Level::Must,
            promise: "`.env.local`, `.env.<APP_ENV>` and `.env` are loaded from the working directory in every environment; the earlier file wins; missing files are skipped.",
            doc: DocRef::at("dotenv.md", "Defaults"),
            method: "Write combinations of the three files into the empty working directory, boot, read each key back through the echo endpoint; PORT from `.env` must be the port served.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gf_env_1),
        },
        Clause {
            id: "GF-ENV-2",
            level: Level::Must,
            promise: "A variable already in the process environment always beats every file, even when it is empty.",
            doc: DocRef::at("dotenv.md", "Precedence"),
            method: "Set the key in the environment (non-empty, then empty) with different values in the files; read it back; PORT in the environment must beat PORT in `.env`.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gf_env_2),
        },
        Clause {
            id: "GF-ENV-3",
            level: Level::Info,
            promise: "APP_ENV selects `.env.<APP_ENV>` from the process environment; APP_ENV written in `.env` is recorded.",
            doc: DocRef::at("dotenv.md", "Defaults"),
            method: "Put APP_ENV=production in `.env` (and, as a control, in the environment) beside a `.env.production`; record which keys of the overlay apply.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gf_env_3),
        },
        Clause {
            id: "GF-ENV-4",
            level: Level::Must,
            promise: "GOFASTR_DOTENV=off in the process environment suppresses loading the files; in `.env` it has no effect.",
            doc: DocRef::at("dotenv.md", "Disabling auto-load"),
            method: "Boot with GOFASTR_DOTENV=off and keys in `.env.local` and `.env`: they must be absent. Also record OFF, 0 and false.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gf_env_4),
        },
        Clause {
            id: "GF-ENV-5",
            level: Level::Must,
            promise: "A malformed env file fails fast, naming the file and the line.",
            doc: DocRef::at("dotenv.md", "Defaults"),
            method: "A line without `=` in `.env` (line 3) and in `.env.local` (line 2): the binary must exit non-zero before serving, naming the file and line; whether other files' keys apply is recorded.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gf_env_5),
        },
        Clause {
            id: "GF-ENV-6",
            level: Level::Must,
            promise: "`${VAR}` in double-quoted values resolves from the same or an earlier file, then the process environment, else empty; escapes, cycles and unclosed braces as documented.",
            doc: DocRef::at("dotenv.md", "Variable expansion `${VAR}`"),
            method: "One `.env` exercising every expansion rule (with HOME set, the doc's own `${HOME}/bin` example), and a `.env` referring to a key of `.env.local`; read every key back.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gf_env_6),
        },
        Clause {
            id: "GF-ENV-7",
            level: Level::Must,
            promise: "The file format: quoting and escapes, `export`, inline `#` kept in unquoted values; invalid keys and multi-line values are parse errors.",
            doc: DocRef::at("dotenv.md", "File format"),
            method: "One `.env` with every valid form, read back key by key; then one file per invalid form, each with a sentinel key, which must not be applied (or the binary must refuse to boot).",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gf_env_7),
        },
        Clause {
            id: "GF-ENV-8",
            level: Level::Must,
            promise: "GOFASTR_SECRET and GOFASTR_SECRET_PREVIOUS (each at least 32 characters) are accepted from the environment or `.env`; shorter ones are recorded.",
            doc: DocRef::at("deploy.md", "Rotating secrets without a mass logout"),
            method: "Boot with fresh 48-character secrets from the environment and from `.env` (must serve); record what a 12-character secret does.",
            needs: Needs::NONE,
            check: check!(gf_env_8),
        },
        Clause {
            id: "GF-ENV-9",
            level: Level::Must,
            promise: "GOFASTR_ROLE=worker serves only /healthz and /readyz; serve serves the full router; an invalid role fails at construction.",
            doc: DocRef::at("scaling.md", "Serve/worker roles"),
            method: "Boot with each role; probe /healthz, /readyz, /metrics and an app route (the echo endpoint); an invalid role must refuse to boot.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint],
                ..Needs::NONE
            },
            check: check!(gf_env_9),
        },
        Clause {
            id: "GF-ENV-10",
            level: Level::Must,
            promise: "Livereload routes exist only with GOFASTR_DEV truthy, never with GOFASTR_ENV=production or GOFASTR_DEV_LIVERELOAD=0.",
            doc: DocRef::at("dev-livereload.md", "How it turns on"),
            method: "GET /__livereload.js (and /__livereload when it must be off) under each combination; /mcp is not probed because the scaffold mounts it with WithMCP regardless of dev mode.",
            needs: Needs::NONE,
            check: check!(gf_env_10),
        },
    ]
}

// The checks: each judges its clause's table, graded by the clause's level.

async fn gf_env_1(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GF_ENV_1).await
}

async fn gf_env_2(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GF_ENV_2).await
}

async fn gf_env_3(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Info), GF_ENV_3).await
}

async fn gf_env_4(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GF_ENV_4).await
}

async fn gf_env_5(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GF_ENV_5).await
}

async fn gf_env_6(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GF_ENV_6).await
}

async fn gf_env_7(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GF_ENV_7).await
}

async fn gf_env_8(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GF_ENV_8).await
}

async fn gf_env_9(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GF_ENV_9).await
}

async fn gf_env_10(cx: &mut Cx) -> Result<(), Failure> {
    table::judge(cx, Grade::of(Level::Must), GF_ENV_10).await
}

const GF_ENV_1: &[Case] = &[
    Case {
        name: ".env alone",
        files: &[(".env", "CONF_K=base\n")],
        env: &[],
        want: &[doc(Value("CONF_K", "base"))],
    },
    Case {
        name: ".env.local beats .env",
        files: &[
            (".env.local", "CONF_K=local\n"),
            (".env", "CONF_K=base\nCONF_BASE_ONLY=b\n"),
        ],
        env: &[],
        want: &[doc(Value("CONF_K", "local")), doc(Value("CONF_BASE_ONLY", "b"))],
    },
    Case {
        name: ".env.<APP_ENV> beats .env",
        files: &[
            (".env.staging", "CONF_K=staging\n"),
            (".env", "CONF_K=base\nCONF_BASE_ONLY=b\n"),
        ],
        env: &[("APP_ENV", Set("staging"))],
        want: &[doc(Value("CONF_K", "staging")), doc(Value("CONF_BASE_ONLY", "b"))],
    },
    Case {
        name: ".env.local beats .env.<APP_ENV>",
        files: &[
            (".env.local", "CONF_K=local\n"),
            (".env.staging", "CONF_K=staging\nCONF_STAGING_ONLY=s\n"),
            (".env", "CONF_K=base\n"),
        ],
        env: &[("APP_ENV", Set("staging"))],
        want: &[doc(Value("CONF_K", "local")), doc(Value("CONF_STAGING_ONLY", "s"))],
    },
    Case {
        name: "no overlay without APP_ENV",
        files: &[(".env.staging", "CONF_K=staging\n"), (".env", "CONF_K=base\n")],
        env: &[],
        want: &[doc(Value("CONF_K", "base"))],
    },
    Case {
        name: "loaded with APP_ENV=production too",
        files: &[(".env", "CONF_K=base\n")],
        env: &[("APP_ENV", Set("production"))],
        want: &[doc(Value("CONF_K", "base"))],
    },
    Case {
        name: "missing files are skipped",
        files: &[(".env.local", "CONF_K=local\n")],
        env: &[("APP_ENV", Set("staging"))],
        want: &[doc(Value("CONF_K", "local"))],
    },
    Case {
        name: "PORT from .env is the port served",
        files: &[(".env", "PORT={port}\n")],
        env: &[("PORT", Unset)],
        want: &[doc(Serves)],
    },
];

const GF_ENV_2: &[Case] = &[
    Case {
        name: "real value beats every file",
        files: &[
            (".env.local", "CONF_K=local\n"),
            (".env.staging", "CONF_K=staging\n"),
            (".env", "CONF_K=base\n"),
        ],
        env: &[("CONF_K", Set("from-env")), ("APP_ENV", Set("staging"))],
        want: &[doc(Value("CONF_K", "from-env"))],
    },
    Case {
        name: "empty real value beats the file",
        files: &[(".env.local", "CONF_K=local\n"), (".env", "CONF_K=base\n")],
        env: &[("CONF_K", Empty)],
        want: &[doc(Value("CONF_K", ""))],
    },
    Case {
        name: "PORT in the environment beats PORT in .env",
        files: &[(".env", "PORT={other}\n")],
        env: &[],
        want: &[doc(Serves)],
    },
];

const GF_ENV_3: &[Case] = &[
    Case {
        name: "APP_ENV=production written in .env",
        files: &[
            (".env", "APP_ENV=production\nCONF_K=base\n"),
            (".env.production", "CONF_K=prod\nCONF_ONLY_PROD=1\n"),
        ],
        env: &[],
        want: &[
            code(Value("APP_ENV", "production")),
            code(Value("CONF_K", "base")),
            code(Absent("CONF_ONLY_PROD")),
        ],
    },
    Case {
        name: "APP_ENV=production in the environment (control)",
        files: &[
            (".env", "CONF_K=base\n"),
            (".env.production", "CONF_K=prod\nCONF_ONLY_PROD=1\n"),
        ],
        env: &[("APP_ENV", Set("production"))],
        want: &[code(Value("CONF_K", "prod")), code(Value("CONF_ONLY_PROD", "1"))],
    },
];

const GF_ENV_4: &[Case] = &[
    Case {
        name: "GOFASTR_DOTENV=off",
        files: &[(".env.local", "CONF_L=local\n"), (".env", "CONF_K=from-file\n")],
        env: &[("GOFASTR_DOTENV", Set("off"))],
        want: &[doc(Absent("CONF_K")), doc(Absent("CONF_L"))],
    },
    Case {
        name: "GOFASTR_DOTENV=off written in .env",
        files: &[(".env", "GOFASTR_DOTENV=off\nCONF_K=from-file\n")],
        env: &[],
        want: &[doc(Value("CONF_K", "from-file"))],
    },
    Case {
        name: "GOFASTR_DOTENV=OFF (case differs)",
        files: &[(".env", "CONF_K=from-file\n")],
        env: &[("GOFASTR_DOTENV", Set("OFF"))],
        want: &[code(Value("CONF_K", "from-file"))],
    },
    Case {
        name: "GOFASTR_DOTENV=false",
        files: &[(".env", "CONF_K=from-file\n")],
        env: &[("GOFASTR_DOTENV", Set("false"))],
        want: &[code(Value("CONF_K", "from-file"))],
    },
];

const GF_ENV_5: &[Case] = &[
    Case {
        name: "line 3 of .env has no '='",
        files: &[
            (".env.local", "CONF_GOOD=1\n"),
            (".env", "CONF_BASE=1\n# a comment\nNOT_A_PAIR\n"),
        ],
        env: &[],
        want: &[
            doc(Refuses(None, &[".env", "line 3"])),
            code(Absent("CONF_GOOD")),
            code(Absent("CONF_BASE")),
            code(NoLine("dotenv")),
        ],
    },
    Case {
        name: "line 2 of .env.local has no '='",
        files: &[(".env.local", "CONF_GOOD=1\nNOT_A_PAIR\n"), (".env", "CONF_BASE=1\n")],
        env: &[],
        want: &[doc(Refuses(None, &[".env.local", "line 2"])), code(Absent("CONF_BASE"))],
    },
];

const GF_ENV_6: &[Case] = &[
    Case {
        name: "every rule in one .env",
        files: &[(
            ".env",
            r#"CONF_A=alpha
CONF_SAME="${CONF_A}/x"
PATH_TPL="${HOME}/bin"
CONF_UNDEF="[${CONF_NOT_SET_ANYWHERE}]"
CONF_CYCLE="${CONF_CYCLE}"
CONF_ESCAPED="\${CONF_A}"
CONF_UNCLOSED="${CONF_A"
CONF_BARE="$CONF_A"
CONF_SINGLE='${CONF_A}'
CONF_UNQUOTED=${CONF_A}
"#,
        )],
        env: &[("HOME", Set("/home/conform"))],
        want: &[
            doc(Value("CONF_SAME", "alpha/x")),
            doc(Value("PATH_TPL", "/home/conform/bin")),
            doc(Value("CONF_UNDEF", "[]")),
            doc(Value("CONF_CYCLE", "")),
            doc(Value("CONF_ESCAPED", "${CONF_A}")),
            doc(Value("CONF_UNCLOSED", "${CONF_A")),
            doc(Value("CONF_BARE", "$CONF_A")),
            doc(Value("CONF_SINGLE", "${CONF_A}")),
            doc(Value("CONF_UNQUOTED", "${CONF_A}")),
        ],
    },
    Case {
        name: "a key of an earlier file in the chain",
        files: &[
            (".env.local", "CONF_BASE=/opt/local\n"),
            (".env", "CONF_CHAIN=\"${CONF_BASE}/bin\"\n"),
        ],
        env: &[],
        want: &[doc(Value("CONF_CHAIN", "/opt/local/bin"))],
    },
];

const GF_ENV_7: &[Case] = &[
    Case {
        name: "every valid form",
        files: &[(
            ".env",
            r#"# comments and blank lines are allowed

CONF_BARE=bar
CONF_QUOTED="hello world"
CONF_DQ="a\tb\nc\"d\\e"
CONF_LITERAL='hello\nworld'
export CONF_EXPORTED=8080
CONF_INLINE=bar # kept
_CONF_UNDER=1
CONF_DUP=first
CONF_DUP=second
"#,
        )],
        env: &[],
        want: &[
            doc(Value("CONF_BARE", "bar")),
            doc(Value("CONF_QUOTED", "hello world")),
            doc(Value("CONF_DQ", "a\tb\nc\"d\\e")),
            doc(Value("CONF_LITERAL", "hello\\nworld")),
            doc(Value("CONF_EXPORTED", "8080")),
            doc(Value("CONF_INLINE", "bar # kept")),
            doc(Value("_CONF_UNDER", "1")),
            code(Value("CONF_DUP", "second")),
        ],
    },
    Case {
        name: "a multi-line double-quoted value",
        files: &[(".env", "CONF_SENTINEL=1\nCONF_ML=\"first\nsecond\"\n")],
        env: &[],
        want: &[doc(Rejected("CONF_SENTINEL"))],
    },
    Case {
        name: "a key starting with a digit",
        files: &[(".env", "CONF_SENTINEL=1\n1BAD=x\n")],
        env: &[],
        want: &[doc(Rejected("CONF_SENTINEL"))],
    },
    Case {
        name: "a key with a dash",
        files: &[(".env", "CONF_SENTINEL=1\nBAD-KEY=x\n")],
        env: &[],
        want: &[doc(Rejected("CONF_SENTINEL"))],
    },
    Case {
        name: "a non-ASCII key",
        files: &[(".env", "CONF_SENTINEL=1\nÄPFEL=1\n")],
        env: &[],
        want: &[doc(Rejected("CONF_SENTINEL")), code(Value("ÄPFEL", "1"))],
    },
];

const GF_ENV_8: &[Case] = &[
    Case {
        name: "a 48-character GOFASTR_SECRET in the environment",
        files: &[],
        env: &[("GOFASTR_SECRET", Set("{secret}"))],
        want: &[doc(Serves)],
    },
    Case {
        name: "a 48-character GOFASTR_SECRET in .env",
        files: &[(".env", "GOFASTR_SECRET={secret}\n")],
        env: &[],
        want: &[doc(Serves)],
    },
    Case {
        name: "rotation: 48-character current and previous secrets",
        files: &[],
        env: &[
            ("GOFASTR_SECRET", Set("{secret}")),
            ("GOFASTR_SECRET_PREVIOUS", Set("{secret2},{secret}")),
        ],
        want: &[doc(Serves)],
    },
    Case {
        name: "a 12-character GOFASTR_SECRET in the environment",
        files: &[],
        env: &[("GOFASTR_SECRET", Set("{short_secret}"))],
        want: &[code(Refuses(Some(2), &["at least 32"]))],
    },
    Case {
        name: "a 12-character GOFASTR_SECRET in .env",
        files: &[(".env", "GOFASTR_SECRET={short_secret}\n")],
        env: &[],
        want: &[code(Refuses(Some(2), &["at least 32"]))],
    },
    Case {
        name: "a 12-character entry in GOFASTR_SECRET_PREVIOUS",
        files: &[],
        env: &[
            ("GOFASTR_SECRET", Set("{secret}")),
            ("GOFASTR_SECRET_PREVIOUS", Set("{secret2},{short_secret}")),
        ],
        want: &[code(Refuses(Some(2), &["at least 32"]))],
    },
];

const GF_ENV_9: &[Case] = &[
    Case {
        name: "GOFASTR_ROLE=worker",
        files: &[],
        env: &[("GOFASTR_ROLE", Set("worker"))],
        want: &[
            doc(Status("/healthz", 200)),
            doc(Status("/readyz", 200)),
            doc(Status("/metrics", 404)),
            doc(EchoRoute(404)),
            code(Line("worker ready")),
        ],
    },
    Case {
        name: "GOFASTR_ROLE=serve",
        files: &[],
        env: &[("GOFASTR_ROLE", Set("serve"))],
        want: &[
            doc(Status("/healthz", 200)),
            doc(Status("/metrics", 200)),
            doc(EchoRoute(200)),
        ],
    },
    Case {
        name: "an invalid GOFASTR_ROLE",
        files: &[],
        env: &[("GOFASTR_ROLE", Set("bogus"))],
        want: &[doc(Refuses(None, &[])), code(Refuses(Some(2), &["GOFASTR_ROLE"]))],
    },
    Case {
        name: "GOFASTR_ROLE=WORKER (upper case)",
        files: &[],
        env: &[("GOFASTR_ROLE", Set("WORKER"))],
        want: &[code(EchoRoute(404))],
    },
    Case {
        name: "GOFASTR_ROLE=worker written in .env",
        files: &[(".env", "GOFASTR_ROLE=worker\n")],
        env: &[],
        want: &[code(EchoRoute(404))],
    },
];

const GF_ENV_10: &[Case] = &[
    Case {
        name: "no dev variables",
        files: &[],
        env: &[],
        want: &[doc(Status("/__livereload.js", 404)), doc(Status("/__livereload", 404))],
    },
    Case {
        name: "GOFASTR_DEV=1",
        files: &[],
        env: &[("GOFASTR_DEV", Set("1"))],
        want: &[doc(Status("/__livereload.js", 200))],
    },
    Case {
        name: "GOFASTR_DEV=1 with GOFASTR_ENV=production",
        files: &[],
        env: &[("GOFASTR_DEV", Set("1")), ("GOFASTR_ENV", Set("production"))],
        want: &[doc(Status("/__livereload.js", 404))],
    },
    Case {
        name: "GOFASTR_DEV=1 with GOFASTR_DEV_LIVERELOAD=0",
        files: &[],
        env: &[("GOFASTR_DEV", Set("1")), ("GOFASTR_DEV_LIVERELOAD", Set("0"))],
        want: &[doc(Status("/__livereload.js", 404))],
    },
    Case {
        name: "GOFASTR_DEV=1 with GOFASTR_ENV=staging",
        files: &[],
        env: &[("GOFASTR_DEV", Set("1")), ("GOFASTR_ENV", Set("staging"))],
        want: &[code(Status("/__livereload.js", 404))],
    },
    Case {
        name: "GOFASTR_DEV=1 written in .env",
        files: &[(".env", "GOFASTR_DEV=1\n")],
        env: &[],
        want: &[code(Status("/__livereload.js", 200))],
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
                ("GF-ENV-1", GF_ENV_1),
                ("GF-ENV-2", GF_ENV_2),
                ("GF-ENV-3", GF_ENV_3),
                ("GF-ENV-4", GF_ENV_4),
                ("GF-ENV-5", GF_ENV_5),
                ("GF-ENV-6", GF_ENV_6),
                ("GF-ENV-7", GF_ENV_7),
                ("GF-ENV-8", GF_ENV_8),
                ("GF-ENV-9", GF_ENV_9),
                ("GF-ENV-10", GF_ENV_10),
            ],
        );
    }
}
