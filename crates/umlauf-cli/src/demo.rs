//! `umlauf demo`: one written procedure of the IT-Planungsrat, end to end, against a running
//! service.
//!
//! The demo keeps its keys in `./data/demo/keys` (a genesis key, the secretariat's and one for
//! each of the 17 voting members) and reuses them, and the body they constituted, on later runs.
//! It subscribes to the circulation's decision subject before anything is opened, opens a
//! circulation under `it-planungsrat-resolution`, casts 17 signed votes, and prints the decision
//! as the subscriber receives it. With `--serve` it starts `umlauf serve` itself when no service
//! answers, and stops it afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{SubsecRound as _, TimeDelta, Utc};
use umlauf_domain::Action;
use umlauf_domain::command::{CastVote, KeySpec, OpenCirculation, Proposal, RuleChoice};
use umlauf_domain::event::Decision;
use umlauf_domain::ids::{Actor, BodyId, Choice, CirculationId, KeyId, MemberId};
use umlauf_domain::read_model::KeyState;
use umlauf_domain::rule::{Preset, Tally};
use umlauf_nats::client::{Client, DecisionFilter};
use umlauf_proof::SigningKey;

use crate::body_file::BodyFile;
use crate::commands::circulation::proposal_digest;
use crate::key_file;
use crate::options::{Connection, LogKeyOption};
use crate::render::{Style, berlin_and_utc, decision_view, percent};
use crate::signer::{Signer, check_receipts};

/// The IT-Planungsrat's body file, compiled in so the demo runs from any directory.
pub const BODY_FILE: &str = include_str!("../../../deploy/bodies/it-planungsrat.json");

/// The demo's circulation.
const TITLE: &str = "Nachnutzung des Online-Dienstes „Wohnsitzanmeldung“ (Einer für Alle)";

const PROPOSAL: &str = "\
Beschluss im Umlaufverfahren (Demonstration)

Nachnutzung des Online-Dienstes „Wohnsitzanmeldung“ nach dem Prinzip „Einer für Alle“

1. Der IT-Planungsrat nimmt den Bericht der FITKO zum Betrieb des Online-Dienstes
   „Wohnsitzanmeldung“ zur Kenntnis.
2. Der IT-Planungsrat beschließt, den Dienst allen Ländern zur Nachnutzung bereitzustellen.
   Die Kosten des Betriebs tragen die nachnutzenden Länder nach dem Königsteiner Schlüssel.
3. Die FITKO wird gebeten, in der nächsten Sitzung über den Stand der Anbindung zu berichten.
";

/// How long the deadline lies ahead of the opening.
const DEADLINE_AHEAD_MINUTES: i64 = 5;

/// Flags of `umlauf demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start `umlauf serve` as a child process if no service answers, and stop it afterwards.
    #[arg(long)]
    pub serve: bool,
    /// Where the demo keeps its keys and the child service's log.
    #[arg(long, value_name = "DIR", default_value = "data/demo")]
    pub dir: PathBuf,
    /// The body's id; the body file's (`it-planungsrat`) by default.
    #[arg(long, value_name = "ID")]
    pub body: Option<BodyId>,
    /// The pause between steps, in milliseconds, for a person watching.
    #[arg(long, value_name = "MS", default_value_t = 300)]
    pub pause_ms: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log_key: LogKeyOption,
}

/// Runs the demo, with a service of its own if asked to.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let style = Style::for_stdout();
    let file = BodyFile::parse(BODY_FILE).context("the compiled-in body file")?;
    let body = args.body.clone().unwrap_or_else(|| file.body.clone());
    let client =
        args.connection.connect().await.map_err(|error| {
            anyhow::anyhow!("{error:#}; is NATS running? `deploy/demo` starts it")
        })?;
    crate::out!(
        "{}",
        style.bold("umlauf demo: a written procedure (Umlaufverfahren) of the IT-Planungsrat")
    )?;
    let subjects = client.subjects();
    crate::out!(
        "{}",
        style.dim(&format!(
            "NATS {}, subjects {}.*, streams {}, {}",
            args.connection.nats_url,
            subjects.prefix(),
            subjects.log_stream(),
            subjects.decisions_stream()
        ))
    )?;
    let mut child = None;
    if !client.service_answers(Duration::from_secs(1)).await {
        if !args.serve {
            bail!(
                "no umlauf service answers under {}.*: start one with `umlauf serve`, or run \
                 `umlauf demo --serve`",
                subjects.prefix()
            );
        }
        child = Some(ChildService::start(&args, &client, style).await?);
    }
    let result = play(&args, &client, &file, &body, style).await;
    if let Some(child) = child {
        child.stop(style).await;
    }
    result
}

async fn play(
    args: &Args,
    client: &Client,
    file: &BodyFile,
    body: &BodyId,
    style: Style,
) -> anyhow::Result<()> {
    let pause = |factor: u64| {
        tokio::time::sleep(Duration::from_millis(args.pause_ms.saturating_mul(factor)))
    };
    let names = file.member_names();
    let voters: Vec<MemberId> = file
        .voting_members()
        .map(|member| member.id.clone())
        .collect();

    let log_key = args.log_key.verifier()?;
    step(style, "1", "Keys")?;
    let keys = DemoKeys::load_or_create(&args.dir.join("keys"), &voters)?;
    crate::out!(
        "  {} in {}: a genesis key, the secretariat's, and one for each of the {} voting members",
        if keys.created { "created" } else { "reusing" },
        args.dir.join("keys").display(),
        voters.len()
    )?;
    crate::out!("  private keys stay in these files; only signatures travel")?;
    pause(2).await;

    step(style, "2", &format!("The body {body}"))?;
    ensure_body(client, file, body, &keys).await?;
    pause(2).await;

    let circulation = CirculationId(uuid::Uuid::new_v4());
    step(
        style,
        "3",
        "A subscriber for the decision, before anything is opened",
    )?;
    let decision_subject = client.subjects().decision(body, &circulation);
    let mut feed = client
        .follow_decisions(DecisionFilter::Circulation(body, circulation), None)
        .await?;
    let subscriber = tokio::spawn(async move {
        let delivery = feed.next().await;
        (delivery, Instant::now())
    });
    crate::out!(
        "  JetStream consumer on {decision_subject} (stream {})",
        client.subjects().decisions_stream()
    )?;
    pause(2).await;

    step(style, "4", "The secretariat opens the circulation")?;
    let secretariat = Signer::new(keys.secretariat.clone(), body.clone(), Actor::Secretariat);
    let opened_at = Utc::now().trunc_subsecs(0);
    let deadline = opened_at + TimeDelta::minutes(DEADLINE_AHEAD_MINUTES);
    let sha256 = proposal_digest(PROPOSAL);
    let open = Action::OpenCirculation(OpenCirculation {
        circulation,
        title: TITLE.to_owned(),
        proposal: Proposal {
            text: Some(PROPOSAL.to_owned()),
            reference: None,
            sha256,
        },
        rule: RuleChoice::Preset {
            preset: Preset::ItPlanungsratResolution,
            params: None,
        },
        deadline,
    });
    let (_, reply) = secretariat.submit(client, open).await?;
    crate::out!("  {}", style.bold(TITLE))?;
    for line in PROPOSAL.lines().filter(|line| !line.is_empty()).skip(2) {
        crate::out!("  {}", style.dim(&format!("| {line}")))?;
    }
    crate::out!("  circulation  {circulation}")?;
    crate::out!(
        "  rule         {}: the Bund votes yes, at least 11 Länder vote yes, and those hold",
        Preset::ItPlanungsratResolution
    )?;
    crate::out!(
        "               at least 2/3 of the Länder's Königstein shares (IT-Staatsvertrag § 1 (7))"
    )?;
    crate::out!("  deadline     {}", berlin_and_utc(deadline))?;
    crate::out!("  proposal     sha256 {sha256}")?;
    crate::out!(
        "  recorded at log position {}",
        positions(&reply.positions())
    )?;
    pause(3).await;

    step(
        style,
        "5",
        "The members vote, each signing with its own key",
    )?;
    let width = voters
        .iter()
        .map(|member| names.get(member).map_or(0, |name| name.chars().count()))
        .max()
        .unwrap_or(0);
    let mut closed_at = None;
    let mut verified = 0_usize;
    for member in &voters {
        let (choice, statement) = vote_plan(member);
        let key = keys
            .members
            .get(member)
            .with_context(|| format!("no demo key for {member}"))?;
        let signer = Signer::new(key.clone(), body.clone(), Actor::Member(member.clone()));
        let vote = Action::CastVote(CastVote {
            circulation,
            choice,
            proposal_sha256: sha256,
            statement: statement.map(str::to_owned),
        });
        let (_, reply) = signer
            .submit(client, vote)
            .await
            .with_context(|| format!("the vote of {member}"))?;
        let checkpoint = check_receipts(&reply, &log_key, None)
            .with_context(|| format!("the vote of {member}"))?;
        verified += 1;
        let records = reply.positions();
        let name = names.get(member).map_or("", String::as_str);
        crate::out!(
            "  {:<6} {name:<width$}  {}  {}",
            member.as_str(),
            style.choice(&format!("{:<7}", choice.to_string())),
            style.dim(&format!(
                "signed, accepted at log position {}, receipt verified (tree size {})",
                records
                    .first()
                    .map_or_else(|| "?".to_owned(), u64::to_string),
                checkpoint.size
            ))
        )?;
        if let Some(statement) = statement {
            crate::out!(
                "  {:<6} {:<width$}  {}",
                "",
                "",
                style.dim(&format!("„{statement}“"))
            )?;
        }
        if records.len() > 1 {
            closed_at = records.last().copied();
        }
        pause(1).await;
    }
    let last_vote = Instant::now();
    crate::out!(
        "  {verified} receipts verified: each vote is in the log signed by {log_key}, proven by \
         its inclusion under a signed checkpoint"
    )?;
    if let Some(position) = closed_at {
        crate::out!(
            "  all {} have answered: the service closed the circulation (log position {position})",
            voters.len()
        )?;
    }
    pause(2).await;

    step(style, "6", "The decision, as the subscriber receives it")?;
    let (delivery, received) = tokio::time::timeout(Duration::from_secs(30), subscriber)
        .await
        .with_context(|| {
            format!(
                "no decision arrived within 30 seconds. The service's relay publishes it; its log \
                 says why it did not ({} if this demo started the service). A NATS server that \
                 holds another log's streams under these names (another clone's demo, say) \
                 raises the fork alarm and stops the relay: run the demo where that log is, or \
                 give it subjects and streams of its own (--subject-root, --stream-prefix)",
                args.dir.join("serve.log").display()
            )
        })?
        .context("the subscriber failed")?;
    let delivery = delivery.context("the decision consumer ended without a message")??;
    let decision = delivery
        .decision
        .as_ref()
        .map_err(|problem| anyhow::anyhow!("unreadable decision: {problem}"))?
        .clone();
    crate::out!(
        "  {}",
        style.dim(&format!(
            "received {} ms after the last vote was accepted",
            received.saturating_duration_since(last_vote).as_millis()
        ))
    )?;
    for line in decision_view(&decision, delivery.subject(), &names, style).lines() {
        crate::out!("  {line}")?;
    }
    crate::out!()?;
    for line in crate::render::wrap(&in_words(&decision.tally, decision.decision), 96) {
        crate::out!("  {line}")?;
    }
    delivery.ack().await?;
    crate::out!()?;
    let connection = connection_flags(&args.connection);
    crate::out!(
        "{}",
        style.dim(&format!(
            "See it again: umlauf status {circulation}{connection}\n\
             Follow decisions: umlauf watch --body {body}{connection}"
        ))
    )?;
    Ok(())
}

fn step(style: Style, number: &str, title: &str) -> std::io::Result<()> {
    crate::out!()?;
    crate::out!("{}", style.bold(&format!("{number}. {title}")))
}

fn positions(positions: &[u64]) -> String {
    match positions {
        [] => "?".to_owned(),
        [position] => position.to_string(),
        [first, .., last] => format!("{first}–{last}"),
    }
}

fn connection_flags(connection: &Connection) -> String {
    let mut flags = String::new();
    if connection.nats_url != "nats://127.0.0.1:4222" {
        flags.push_str(&format!(" --nats-url {}", connection.nats_url));
    }
    if connection.subject_root != "umlauf" {
        flags.push_str(&format!(" --subject-root {}", connection.subject_root));
    }
    if connection.stream_prefix != "UMLAUF" {
        flags.push_str(&format!(" --stream-prefix {}", connection.stream_prefix));
    }
    flags
}

/// How each member votes in the demo: the Bund and most Länder yes, two Länder no, one abstains.
fn vote_plan(member: &MemberId) -> (Choice, Option<&'static str>) {
    match member.as_str() {
        "DE-BY" => (
            Choice::No,
            Some("Bayern betreibt eine eigene Lösung und lehnt die Kostenverteilung ab."),
        ),
        "DE-SL" => (
            Choice::No,
            Some("Das Saarland sieht die Finanzierung der Betriebsphase nicht gesichert."),
        ),
        "DE-HB" => (
            Choice::Abstain,
            Some("Bremen enthält sich bis zur Befassung des Senats."),
        ),
        "DE-NW" => (
            Choice::Yes,
            Some("Nordrhein-Westfalen bittet um einen Zeitplan für die Anbindung der Kommunen."),
        ),
        _ => (Choice::Yes, None),
    }
}

/// The IT-Planungsrat's three requirements in a sentence, from the tally's integers.
fn in_words(tally: &Tally, decision: Decision) -> String {
    let outcome = match decision {
        Decision::Adopted => "The resolution is adopted.",
        Decision::Rejected => "The resolution is rejected.",
        Decision::Failed(_) => "The procedure failed.",
        Decision::Withdrawn => "The circulation was withdrawn.",
    };
    let [bund, count, share] = tally.requirements.as_slice() else {
        return outcome.to_owned();
    };
    format!(
        "In words: the Bund {} yes; {} of {} Länder voted yes (at least 11 needed); they hold \
         {} of the Länder's Königstein shares ({} units of {}; at least 2/3 = {} needed). {outcome}",
        if bund.met { "voted" } else { "did not vote" },
        count.value,
        count.base,
        percent(share.value, share.base),
        share.value,
        share.base,
        percent(2, 3),
    )
}

/// The demo's keys.
struct DemoKeys {
    genesis: SigningKey,
    secretariat: SigningKey,
    members: BTreeMap<MemberId, SigningKey>,
    created: bool,
}

impl DemoKeys {
    /// Reads the keys from `dir`, making any that are missing.
    fn load_or_create(dir: &Path, voters: &[MemberId]) -> anyhow::Result<DemoKeys> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let mut created = false;
        let mut load = |name: &str| -> anyhow::Result<SigningKey> {
            let path = dir.join(format!("{name}.pem"));
            if path.exists() {
                key_file::load_signing_key(&path)
            } else {
                created = true;
                key_file::generate(&path)
            }
        };
        let genesis = load("genesis")?;
        let secretariat = load("secretariat")?;
        let members = voters
            .iter()
            .map(|member| Ok((member.clone(), load(member.as_str())?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(DemoKeys {
            genesis,
            secretariat,
            members,
            created,
        })
    }

    fn key_specs(&self) -> Vec<KeySpec> {
        let spec = |holder: Actor, key: &SigningKey, label: &str| KeySpec {
            holder,
            public_key: key_file::domain_key(&key.verifying_key()),
            label: Some(label.to_owned()),
        };
        std::iter::once(spec(
            Actor::Secretariat,
            &self.secretariat,
            "Geschäftsstelle (demo)",
        ))
        .chain(
            self.members
                .iter()
                .map(|(member, key)| spec(Actor::Member(member.clone()), key, "CIO (demo)")),
        )
        .collect()
    }
}

/// Constitutes the body with the demo's keys, or checks that an earlier run did.
async fn ensure_body(
    client: &Client,
    file: &BodyFile,
    body: &BodyId,
    keys: &DemoKeys,
) -> anyhow::Result<()> {
    let registered = client.keys(body).await?;
    if registered.is_empty() {
        let genesis = Signer::new(keys.genesis.clone(), body.clone(), Actor::Genesis);
        let constitution =
            file.constitution(genesis.public_key(), Path::new("."), keys.key_specs())?;
        let summary = format!(
            "{} members ({} voting, {} advisory), groups {}, the Königstein table {}, presets {}",
            constitution.members.len(),
            file.voting_members().count(),
            constitution.members.len() - file.voting_members().count(),
            constitution
                .groups
                .iter()
                .map(|group| group.id.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            constitution
                .weight_tables
                .iter()
                .map(|table| table.year.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            constitution
                .presets
                .keys()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        );
        let key_count = constitution.keys.len();
        let result = genesis
            .submit(client, Action::ConstituteBody(constitution))
            .await;
        let (_, reply) = match result {
            Err(error)
                if error
                    .refusal()
                    .is_some_and(|refusal| refusal.code == "not_genesis") =>
            {
                return Err(anyhow::Error::new(error).context(
                    "this service's genesis key is another one (the first body constituted on it \
                     fixed it): run the demo from the directory of that first run, or against a \
                     fresh service",
                ));
            }
            other => other?,
        };
        crate::out!(
            "  constituted {} ({}), signed by the genesis key",
            body,
            file.name
        )?;
        crate::out!("  {summary}")?;
        crate::out!(
            "  {key_count} public keys registered; log positions {}",
            positions(&reply.positions())
        )?;
        return Ok(());
    }
    // The body exists: it must be the one an earlier run constituted with these keys.
    let active: BTreeMap<KeyId, &Actor> = registered
        .iter()
        .filter(|key| key.state == KeyState::Active)
        .map(|key| (key.key_id, &key.holder))
        .collect();
    let secretariat_id = KeyId::of(&key_file::domain_key(&keys.secretariat.verifying_key()));
    if active.get(&secretariat_id) != Some(&&Actor::Secretariat) {
        bail!(
            "body {body} exists, but not with the demo's secretariat key from this directory: run \
             the demo from the directory of its first run, or pass --body another-id"
        );
    }
    let secretariat = Signer::new(keys.secretariat.clone(), body.clone(), Actor::Secretariat);
    let mut added = 0;
    for spec in keys.key_specs().into_iter().skip(1) {
        let key_id = KeyId::of(&spec.public_key);
        if active.get(&key_id) == Some(&&spec.holder) {
            continue;
        }
        secretariat
            .submit(client, Action::RegisterKey(spec))
            .await
            .context("registering a demo member key")?;
        added += 1;
    }
    crate::out!("  {body} exists from an earlier run with these keys: reusing it")?;
    if added > 0 {
        crate::out!("  registered {added} missing member keys")?;
    }
    Ok(())
}

/// `umlauf serve` as a child process of this binary.
struct ChildService {
    child: tokio::process::Child,
}

impl ChildService {
    /// Starts `umlauf serve` on the embedded defaults (a SQLite file under `./data`), with this
    /// demo's NATS URL, subject root and stream prefix, and waits until it answers.
    async fn start(args: &Args, client: &Client, style: Style) -> anyhow::Result<ChildService> {
        std::fs::create_dir_all(&args.dir)
            .with_context(|| format!("creating {}", args.dir.display()))?;
        let log_path = args.dir.join("serve.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let exe =
            std::env::current_exe().context("finding this program to start `umlauf serve`")?;
        let mut child = tokio::process::Command::new(exe)
            .arg("serve")
            .env("UMLAUF_NATS_URL", &args.connection.nats_url)
            .env("UMLAUF_SUBJECT_ROOT", &args.connection.subject_root)
            .env("UMLAUF_STREAM_PREFIX", &args.connection.stream_prefix)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting `umlauf serve`")?;
        crate::out!(
            "{}",
            style.dim(&format!(
                "no service answered: started `umlauf serve` (pid {}, log {})",
                child.id().unwrap_or_default(),
                log_path.display()
            ))
        )?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!(
                    "`umlauf serve` exited ({status}) before it answered; the end of {}:\n{}",
                    log_path.display(),
                    tail.join("\n")
                );
            }
            if client.service_answers(Duration::from_millis(500)).await {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "`umlauf serve` did not answer within a minute; see {}",
                    log_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        crate::out!(
            "{}",
            style.dim(&format!(
                "the service answers (after {} ms)",
                started.elapsed().as_millis()
            ))
        )?;
        Ok(ChildService { child })
    }

    /// Stops the child: an interrupt, as Ctrl-C would send, and after ten seconds a kill.
    async fn stop(mut self, style: Style) {
        let _ = crate::out!("{}", style.dim("stopping the service started for the demo"));
        if let Some(pid) = self.child.id() {
            // `kill` rather than a signal library: this crate forbids unsafe code, and SIGINT is
            // what `umlauf serve` shuts down cleanly on.
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
