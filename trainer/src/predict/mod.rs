//! `trainer predict`: texts in, one prediction per text out, for any amount of text.
//!
//! The input ([`crate::inputs`]) is read a chunk of lines at a time; each chunk is
//! tokenized, sorted by length into padded batches, classified, and written in input
//! order ([`output`]) before the next is read, so memory is bounded by the chunk, not
//! the input, and an interruption loses at most the chunk in flight. Chunks start at
//! fixed lines (multiples of `--chunk-size`), which is what makes a resumed run or a
//! set of shards ([`shard`]) write exactly what one uninterrupted run writes.

pub mod output;
pub mod shard;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use model_core::backend::select_device;
use model_core::input::Row;
use model_core::input::{Columns, Labels};
use model_core::loader::load_classifier;
use model_core::{Classifier, Prediction};

use crate::data::Split;
use crate::inference_args::InferenceArgs;
use crate::inputs::{Input, Item};
use crate::progress::Progress;
use model_core::output::csv_header;
use output::{OutFormat, Sink};
use shard::Shard;

/// What a bad input line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    /// Stop with an error naming the line, after writing the rows before it.
    Fail,
    /// Report the line on stderr and go on.
    Skip,
}

/// Arguments of `trainer predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model folder (Hugging Face layout or a `trainer export`) or hub id.
    #[arg(long)]
    pub model: String,
    #[command(flatten)]
    pub run: InferenceArgs,
    /// Texts to classify; without any, and without --data, one text per line is read
    /// from stdin.
    pub texts: Vec<String>,
    /// Read the texts from a file: .jsonl (a `text` field), .csv or .tsv (a `text`
    /// column), the IMDb .tar.gz archive or folder, anything else one text per line.
    #[arg(long, conflicts_with = "texts")]
    pub data: Option<PathBuf>,
    /// Which IMDb split to read from the archive or folder.
    #[arg(long, value_enum, default_value = "test")]
    pub split: Split,
    /// The text field or column of JSONL or CSV data (default `text`, else `review`).
    #[arg(long)]
    pub text_column: Option<String>,
    /// The id field or column, copied to each row of output (default `id`, if present).
    #[arg(long)]
    pub id_column: Option<String>,
    /// Write to this file instead of stdout (flushed to disk chunk by chunk).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Go on with the --out file an interrupted run of this same command left.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// jsonl or csv.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: OutFormat,
    /// fail: stop at a bad input line (invalid JSON, no text field, invalid UTF-8);
    /// skip: report it on stderr and go on.
    #[arg(long, value_enum, default_value = "fail")]
    pub on_error: OnError,
    /// Classify only share I of N (0 <= I < N) of --data's lines; the N outputs
    /// concatenated in order are the output of the whole input.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Lines of input read, classified and written at a time.
    #[arg(long, default_value_t = 512)]
    pub chunk_size: usize,
}

/// How a run over the input ended.
struct Tally {
    texts: usize,
    skipped: usize,
    last_line: usize,
}

pub fn run(args: PredictArgs, interrupted: Arc<AtomicBool>) -> Result<()> {
    if args.chunk_size == 0 {
        bail!("--chunk-size must be at least 1");
    }
    let input = match &args.data {
        Some(path) => Input::data(path, args.split)?,
        None if args.texts.is_empty() => Input::Stdin,
        None => Input::Texts(args.texts.clone()),
    };
    let shard = args.shard.unwrap_or(Shard::ALL);
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let total = if shard != Shard::ALL || terminal || input.count_is_cheap() {
        input.count()?
    } else {
        None
    };
    let lines = match total {
        Some(n) => shard.lines(n, args.chunk_size),
        None if shard != Shard::ALL => bail!(
            "--shard needs --data FILE: it counts the input's lines first, and stdin can be read only once"
        ),
        None => shard.lines(0, args.chunk_size),
    };

    let classifier = load(&args)?;
    let header = csv_header(&classifier.labels, &[]);
    let header = (shard.index == 0).then_some(header.as_str());
    let (mut sink, first) = match &args.out {
        Some(path) if args.resume => {
            Sink::resume(path, args.format, header, args.chunk_size, lines.start)?
        }
        Some(path) => (Sink::create(path, args.format, header)?, lines.start),
        None => (Sink::stdout(args.format, header)?, lines.start),
    };
    sink.flush()?;
    if first >= lines.end {
        eprintln!("nothing left to classify: the output is complete");
        return Ok(());
    }
    if first > lines.start {
        eprintln!("resuming at line {first}");
    }
    let columns = Columns {
        text: args.text_column.clone(),
        label: None,
        id: args.id_column.clone(),
    };
    let rows = input.spawn(
        &columns,
        Labels::Ignored,
        first..lines.end,
        args.chunk_size * 2,
    )?;
    let mut progress = Progress::new(total.map(|t| t.min(lines.end - 1)), first);
    let tally = classify_all(
        &classifier,
        &args,
        rows,
        &mut sink,
        &mut progress,
        &interrupted,
    );
    progress.finish();
    let tally = tally?;
    if tally.texts == 0 && tally.skipped == 0 && shard == Shard::ALL && !args.resume {
        bail!(
            "no texts to classify: pass them as arguments, one per line on stdin, or --data FILE"
        );
    }
    let skipped = match tally.skipped {
        0 => String::new(),
        n => format!(", skipped {n} bad line(s)"),
    };
    eprintln!(
        "classified {} texts in {:.1} s ({:.1}/s){skipped}",
        tally.texts,
        progress.seconds(),
        tally.texts as f64 / progress.seconds().max(1e-9)
    );
    if interrupted.load(Ordering::SeqCst) {
        let out = args
            .out
            .as_ref()
            .map_or("the output".into(), |p| p.display().to_string());
        eprintln!(
            "stopped after line {}: every row so far is in {out}; the same command with --resume goes on",
            tally.last_line
        );
        return Err(crate::Interrupted.into());
    }
    Ok(())
}

fn load(args: &PredictArgs) -> Result<Classifier> {
    let selected = select_device(args.run.backend)?;
    let options = args.run.options(&args.model)?;
    let mut loaded = load_classifier(&args.model, &selected.device, options)
        .with_context(|| format!("loading model `{}`", args.model))?;
    args.run.apply(&mut loaded.classifier);
    for name in &loaded.report.initialized {
        eprintln!(
            "warning: {name} is not in the checkpoint and was freshly initialised: \
             predictions are meaningless until the model is fine-tuned"
        );
    }
    if !loaded.report.unused.is_empty() {
        eprintln!(
            "note: {} checkpoint tensors unused: {}",
            loaded.report.unused.len(),
            loaded.report.unused.join(", ")
        );
    }
    eprintln!("backend: {}", selected.description);
    Ok(loaded.classifier)
}

/// Read, classify and write chunk after chunk until the input ends, a bad line stops
/// it (an error, after the rows before it are written) or Ctrl-C does (after the
/// chunk in flight is written).
fn classify_all(
    classifier: &Classifier,
    args: &PredictArgs,
    rows: std::sync::mpsc::Receiver<Item>,
    sink: &mut Sink,
    progress: &mut Progress,
    interrupted: &AtomicBool,
) -> Result<Tally> {
    let chunk_of = |line: usize| (line - 1) / args.chunk_size;
    let mut tally = Tally {
        texts: 0,
        skipped: 0,
        last_line: 0,
    };
    let mut rows = rows.into_iter().peekable();
    loop {
        let mut chunk: Vec<Row> = Vec::new();
        let mut stop = None;
        while let Some(item) = rows.next_if(|item| match (item, chunk.first()) {
            (Ok(row), Some(first)) => chunk_of(row.line) == chunk_of(first.line),
            _ => true,
        }) {
            match item {
                Ok(row) => chunk.push(row),
                Err(bad) if bad.fatal || args.on_error == OnError::Fail => {
                    stop = Some(bad);
                    break;
                }
                Err(bad) => {
                    eprintln!("skipped {}", bad.error);
                    tally.skipped += 1;
                }
            }
        }
        if let Some(last) = chunk.last() {
            let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
            let predictions: Vec<Prediction> = classifier.predict(&texts)?;
            for (row, p) in chunk.iter().zip(&predictions) {
                sink.write(row, p)?;
            }
            sink.flush()?;
            tally.texts += chunk.len();
            tally.last_line = last.line;
            progress.advance(chunk.len(), last.line);
        }
        if let Some(bad) = stop {
            let hint = match args.on_error {
                OnError::Fail if !bad.fatal => {
                    "; the rows before it are written: fix the line, or pass --on-error skip, and run again with --resume"
                }
                _ => "",
            };
            bail!("{}{hint}", bad.error);
        }
        if rows.peek().is_none() || interrupted.load(Ordering::SeqCst) {
            return Ok(tally);
        }
    }
}
