//! The run plan: which clauses run on which subjects, and the one way they are run.
//!
//! Both front doors drive a [`Plan`]. `conform certify` calls [`Plan::certify`], which prepares
//! each reference subject, preflights it, runs its clauses, runs its mutants, and builds each
//! report whole, once (doc links and kill matrix included), telling an [`Observer`] as it goes.
//! The `cargo test` harness turns every (subject, clause) of the same plan into a trial that
//! calls [`Subject::run`]: the same preparation (built once, on first use), the same clause
//! runner. So a verdict in CI and a verdict in a certification report come from the same code,
//! and the progress bar, the reports and the test harness are all consumers of one run.
//!
//! A subject is a reference candidate or a mutant of one; the clauses it is graded on are data
//! chosen when the plan is made (the candidate's framework, the run's filters, a mutant's areas).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use harness::candidate::{BuildCache, Candidate, Variant};
use harness::evidence::Evidence;
use harness::report::kills::{KillMatrix, MutantReport};
use harness::report::{self, EXIT_FAILED, EXIT_NOT_JUDGED, Report, Summary};
use harness::verdict::{ClauseResult, Verdict};

use crate::certify::{self, PrepareError};
use crate::clause::Clause;
use crate::cx::Target;
use crate::mutant::{self, Mutant};
use crate::profile::Framework;
use crate::run::{self, Observer as ClauseObserver};
use crate::services::Services;

/// What a subject is.
#[derive(Debug, Clone)]
pub enum Role {
    /// A candidate certified in its own right.
    Reference,
    /// A reference candidate with one promise broken on purpose.
    Mutant {
        /// What it breaks, in one line.
        breaks: String,
        /// The areas it is graded on.
        areas: Vec<String>,
        /// The reference candidate's name.
        base: String,
    },
}

/// One thing the plan certifies: a candidate (or a mutant of one) and the clauses it is graded
/// on. Its executable is built once, by whoever needs it first.
pub struct Subject {
    /// The candidate's name (a mutant's directory name).
    pub name: String,
    /// Its framework.
    pub framework: Framework,
    /// Reference or mutant.
    pub role: Role,
    /// The clauses it is graded on, in catalogue order.
    pub clauses: Vec<Clause>,
    candidate: Candidate,
    variant: Variant,
    cache: BuildCache,
    built: OnceLock<Result<Arc<Target>, Arc<PrepareError>>>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("name", &self.name)
            .field("clauses", &self.clauses.len())
            .finish()
    }
}

impl Subject {
    fn new(
        candidate: Candidate,
        framework: Framework,
        variant: Variant,
        role: Role,
        clauses: Vec<Clause>,
        cache: &BuildCache,
    ) -> Subject {
        Subject {
            name: candidate.manifest.name.clone(),
            framework,
            role,
            clauses,
            candidate,
            variant,
            cache: cache.clone(),
            built: OnceLock::new(),
        }
    }

    /// The candidate as loaded (manifest, directory).
    pub fn candidate(&self) -> &Candidate {
        &self.candidate
    }

    /// Build (or take from the cache) its executable; the first call builds, every later call
    /// gets the same target or the same error. Blocking: call it from a blocking context.
    pub fn prepare(&self) -> Result<Arc<Target>, Arc<PrepareError>> {
        self.built
            .get_or_init(|| {
                certify::build_variant(
                    self.candidate.clone(),
                    self.framework,
                    self.variant.clone(),
                    &self.cache,
                )
                .map_err(Arc::new)
            })
            .clone()
    }

    /// [`prepare`](Subject::prepare) from async code.
    pub async fn prepare_async(self: &Arc<Self>) -> Result<Arc<Target>, Arc<PrepareError>> {
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.prepare()).await {
            Ok(built) => built,
            // The build panicked: say so as a build that could not be made.
            Err(err) => Err(Arc::new(PrepareError::Build(harness::candidate::BuildError::Io {
                candidate: self.name.clone(),
                detail: format!("the build task failed: {err}"),
            }))),
        }
    }

    /// Run its clause `clause` (one of [`Subject::clauses`]) on its built target.
    pub async fn run(&self, target: Arc<Target>, clause: &Clause, services: Arc<Services>) -> ClauseResult {
        run::run_clause(clause, target, services).await
    }
}

/// Which clauses run, and on what.
#[derive(Debug, Default)]
pub struct Plan {
    /// The subjects, references first in the order given, then the mutants.
    pub subjects: Vec<Arc<Subject>>,
}

/// What to build a plan from.
pub struct PlanSpec<'a> {
    /// The reference candidates, loaded.
    pub candidates: Vec<(Candidate, Framework)>,
    /// Every clause there is.
    pub catalogue: &'a [Clause],
    /// Which of a framework's clauses run (filters by ID or area); every one when `None`.
    pub select: Option<&'a dyn Fn(&Clause) -> bool>,
    /// A directory of mutants (`fixtures/mutants`): each mutant based on a planned reference
    /// (its `base`, a directory beside that reference) is planned too, on its own areas.
    pub mutants: Option<&'a Path>,
    /// Where builds are cached.
    pub cache: &'a BuildCache,
}

impl Plan {
    /// The plan for `spec`. A mutants directory that does not load is an error naming it.
    pub fn new(spec: PlanSpec<'_>) -> Result<Plan, String> {
        let selected = |c: &Clause| spec.select.is_none_or(|s| s(c));
        let mut subjects = Vec::new();
        for (candidate, framework) in &spec.candidates {
            let clauses = spec
                .catalogue
                .iter()
                .filter(|c| c.framework() == *framework && selected(c))
                .cloned()
                .collect();
            subjects.push(Arc::new(Subject::new(
                candidate.clone(),
                *framework,
                Variant::default(),
                Role::Reference,
                clauses,
                spec.cache,
            )));
        }
        if let Some(dir) = spec.mutants {
            // A mutant names its base as a directory beside the references: read the mutants once
            // per directory holding a reference.
            let mut parents: Vec<&Path> = spec.candidates.iter().filter_map(|(c, _)| c.dir.parent()).collect();
            parents.dedup();
            for parent in parents {
                for m in mutant::load_all(dir, parent)? {
                    let based_here = spec
                        .candidates
                        .iter()
                        .any(|(r, _)| m.base_dir.canonicalize().is_ok_and(|d| d == r.dir));
                    let planned = subjects.iter().any(|s| s.name == m.name);
                    if based_here && !planned {
                        subjects.push(Arc::new(Plan::mutant_subject(m, spec.catalogue, &selected, spec.cache)));
                    }
                }
            }
        }
        Ok(Plan { subjects })
    }

    fn mutant_subject(
        m: Mutant,
        catalogue: &[Clause],
        selected: &dyn Fn(&Clause) -> bool,
        cache: &BuildCache,
    ) -> Subject {
        let clauses = m.clauses(catalogue).into_iter().filter(|c| selected(c)).collect();
        let role = Role::Mutant {
            breaks: m.breaks.clone(),
            areas: m.areas.clone(),
            base: m.base_name.clone(),
        };
        Subject::new(m.candidate, m.framework, m.variant, role, clauses, cache)
    }

    /// The mutants of the reference subject `reference`, in the plan's order.
    pub fn mutants_of<'a>(&'a self, reference: &'a Subject) -> impl Iterator<Item = &'a Arc<Subject>> {
        self.subjects
            .iter()
            .filter(move |s| matches!(&s.role, Role::Mutant { base, .. } if *base == reference.name))
    }

    /// The reference subjects, in the plan's order.
    pub fn references(&self) -> impl Iterator<Item = &Arc<Subject>> {
        self.subjects.iter().filter(|s| matches!(s.role, Role::Reference))
    }
}

/// What happened, as the run goes: the progress output and the reports' writer consume these.
/// Told from the task running the plan; clause events of concurrent subjects (mutants) may
/// interleave.
#[derive(Debug)]
pub enum Event<'a> {
    /// `subject` is being built.
    Building(&'a Subject),
    /// `subject` is built; its clauses start next.
    Built(&'a Subject, &'a Target),
    /// `subject` could not be built: every clause is an `error` carrying the build's message.
    BuildFailed(&'a Subject, &'a PrepareError),
    /// `subject` did not boot in preflight: every clause is skipped.
    PreflightFailed(&'a Subject, &'a str),
    /// A clause of `subject` started.
    ClauseStarted(&'a Subject, &'a Clause),
    /// A clause of `subject` finished.
    ClauseFinished(&'a Subject, &'a ClauseResult),
    /// Every clause of `subject` has run (a mutant's report follows in its reference's).
    SubjectDone(&'a Subject),
    /// A reference subject is done, with its mutants: its report, built whole, and its exit code.
    ReportReady(&'a Subject, &'a Report, i32),
    /// The mutants of a reference could not all be run (the report then has no kill matrix).
    MutantsFailed(&'a Subject, &'a str),
}

/// Told of every [`Event`].
pub trait Observer: Sync {
    /// `event` happened.
    fn event(&self, event: Event<'_>);
}

/// An observer that says nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: Event<'_>) {}
}

/// The facts of a run that go at the top of every report.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// Service provider.
    pub provider: String,
    /// The collector in the tracing path, as [`Services::collector_description`] words it.
    pub collector: String,
    /// The command line.
    pub command: String,
}

/// How a plan is certified.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Clauses at once per subject, and mutants at once per reference.
    pub parallel: usize,
    /// Boot each reference once before grading it.
    pub preflight: bool,
    /// What goes at the top of the reports.
    pub facts: RunFacts,
}

/// A reference's certification: its report, built whole, and its exit code.
#[derive(Debug)]
pub struct Certified {
    /// The report.
    pub report: Report,
    /// 0 pass, 1 a must failed (or preflight), 2 not judged.
    pub code: i32,
}

impl Plan {
    /// Certify every reference subject, one after the other, each with its mutants; the reports
    /// in the references' order.
    pub async fn certify(
        &self,
        services: &Arc<Services>,
        settings: &Settings,
        observer: &dyn Observer,
    ) -> Vec<Certified> {
        let mut done = Vec::new();
        for reference in self.references() {
            done.push(self.certify_one(reference, services, settings, observer).await);
        }
        done
    }

    async fn certify_one(
        &self,
        subject: &Arc<Subject>,
        services: &Arc<Services>,
        settings: &Settings,
        observer: &dyn Observer,
    ) -> Certified {
        let started = (SystemTime::now(), Instant::now());
        observer.event(Event::Building(subject));
        let target = match subject.prepare_async().await {
            Ok(target) => target,
            Err(err) => {
                // The harness cannot judge a candidate it cannot build: every clause is an error
                // carrying the build's own message, and the report says so.
                observer.event(Event::BuildFailed(subject, &err));
                let message = format!("the candidate could not be built: {err}");
                let results = unrun(
                    &subject.clauses,
                    || Verdict::Error {
                        message: message.clone(),
                    },
                    &Evidence::default(),
                );
                let report = self.report(subject, "", settings, started, results, None);
                observer.event(Event::ReportReady(subject, &report, EXIT_NOT_JUDGED));
                return Certified {
                    report,
                    code: EXIT_NOT_JUDGED,
                };
            }
        };
        observer.event(Event::Built(subject, &target));
        if settings.preflight
            && let Err((why, evidence)) = certify::preflight(target.clone(), services.clone()).await
        {
            observer.event(Event::PreflightFailed(subject, &why));
            let reason = format!("preflight: the candidate did not boot: {why}");
            let results = unrun(&subject.clauses, || Verdict::Skip { reason: reason.clone() }, &evidence);
            let report = self.report(subject, &target.build.source_hash, settings, started, results, None);
            observer.event(Event::SubjectDone(subject));
            observer.event(Event::ReportReady(subject, &report, EXIT_FAILED));
            return Certified {
                report,
                code: EXIT_FAILED,
            };
        }
        let results = run_subject(subject, target.clone(), services, settings.parallel, observer).await;
        observer.event(Event::SubjectDone(subject));
        let mut code_floor = 0;
        let matrix = if self.mutants_of(subject).next().is_some() {
            match self.run_mutants(subject, services, settings, observer).await {
                Ok(runs) => Some(KillMatrix::of(&results, &runs)),
                Err(why) => {
                    observer.event(Event::MutantsFailed(subject, &why));
                    code_floor = EXIT_NOT_JUDGED;
                    None
                }
            }
        } else {
            None
        };
        let report = self.report(subject, &target.build.source_hash, settings, started, results, matrix);
        let code = combine(report.exit_code(), code_floor);
        observer.event(Event::ReportReady(subject, &report, code));
        Certified { report, code }
    }

    /// Every mutant of `reference`, `settings.parallel` at a time (each with its clauses
    /// `settings.parallel` at a time): a mutant's few clauses mostly wait on its candidate (a
    /// drain, a boot), so one mutant at a time leaves the machine idle. In the plan's order.
    async fn run_mutants(
        &self,
        reference: &Subject,
        services: &Arc<Services>,
        settings: &Settings,
        observer: &dyn Observer,
    ) -> Result<Vec<MutantReport>, String> {
        let mutants: Vec<&Arc<Subject>> = self.mutants_of(reference).filter(|m| !m.clauses.is_empty()).collect();
        let runs: Vec<Result<MutantReport, String>> = futures::stream::iter(mutants)
            .map(|mutant| async move {
                let started = (SystemTime::now(), Instant::now());
                observer.event(Event::Building(mutant));
                let target = mutant
                    .prepare_async()
                    .await
                    .map_err(|e| format!("building mutant {}: {e}", mutant.name))?;
                observer.event(Event::Built(mutant, &target));
                let results = run_subject(mutant, target.clone(), services, settings.parallel, observer).await;
                observer.event(Event::SubjectDone(mutant));
                let Role::Mutant { breaks, areas, .. } = &mutant.role else {
                    unreachable!("mutants_of yields mutants only")
                };
                Ok(MutantReport {
                    report: self.report(mutant, &target.build.source_hash, settings, started, results, None),
                    name: mutant.name.clone(),
                    breaks: breaks.clone(),
                    areas: areas.clone(),
                })
            })
            .buffered(settings.parallel.max(1))
            .collect()
            .await;
        runs.into_iter().collect()
    }

    /// The report of `subject`, whole: header, results with their doc links, summary, matrix.
    fn report(
        &self,
        subject: &Subject,
        source_hash: &str,
        settings: &Settings,
        (started_at, clock): (SystemTime, Instant),
        results: Vec<ClauseResult>,
        kill_matrix: Option<KillMatrix>,
    ) -> Report {
        let m = &subject.candidate.manifest;
        let profile = subject.framework.profile();
        let results: Vec<ClauseResult> = results
            .into_iter()
            .map(|mut r| {
                if let Some(c) = subject.clauses.iter().find(|c| c.id == r.clause) {
                    r.doc_url = profile.doc_url(&m.framework_version, c.doc.page);
                }
                r
            })
            .collect();
        Report {
            conform_version: env!("CARGO_PKG_VERSION").to_string(),
            candidate: m.name.clone(),
            framework: subject.framework.name().to_string(),
            framework_module: m.framework_module.clone(),
            framework_version: m.framework_version.clone(),
            framework_version_pinned: subject.candidate.pinned_version.clone(),
            provider: settings.facts.provider.clone(),
            collector: settings.facts.collector.clone(),
            source_hash: source_hash.to_string(),
            started_at: report::rfc3339(started_at),
            duration: clock.elapsed(),
            command: settings.facts.command.clone(),
            summary: Summary::of(&results),
            kill_matrix,
            results,
        }
    }
}

/// Run `subject`'s clauses on `target`, `parallel` at a time, telling `observer`.
async fn run_subject(
    subject: &Subject,
    target: Arc<Target>,
    services: &Arc<Services>,
    parallel: usize,
    observer: &dyn Observer,
) -> Vec<ClauseResult> {
    struct Forward<'a>(&'a Subject, &'a dyn Observer);
    impl ClauseObserver for Forward<'_> {
        fn started(&self, clause: &Clause) {
            self.1.event(Event::ClauseStarted(self.0, clause));
        }
        fn finished(&self, result: &ClauseResult) {
            self.1.event(Event::ClauseFinished(self.0, result));
        }
    }
    run::run_clauses(
        &subject.clauses,
        target,
        services.clone(),
        parallel,
        &Forward(subject, observer),
    )
    .await
}

/// Results for clauses that could not run, each with `verdict`.
fn unrun(clauses: &[Clause], verdict: impl Fn() -> Verdict, evidence: &Evidence) -> Vec<ClauseResult> {
    clauses
        .iter()
        .map(|c| c.result(verdict(), Duration::ZERO, evidence.clone()))
        .collect()
}

/// The exit code of several outcomes: any failure wins, then any unjudged, else success.
pub fn combine(worst: i32, code: i32) -> i32 {
    if worst == EXIT_FAILED || code == EXIT_FAILED {
        EXIT_FAILED
    } else {
        worst.max(code)
    }
}
