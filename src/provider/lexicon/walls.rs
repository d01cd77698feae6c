//! Vendor walls (captcha widgets, bot-wall pages) and the places portals show messages, as data:
//! `providers/lexicon/walls.toml` and `providers/lexicon/surfaces.toml`.

use regex::Regex;
use serde::Deserialize;

use crate::outcome::{self, Outcome};
use crate::provider::spec::Css;

/// One vendor's wall: any one of its marks fires it.
#[derive(Debug, Clone)]
pub struct Wall {
    pub vendor: String,
    pub outcome: Outcome,
    /// The outcome when the wall shows inside a page a rule recognises, if another.
    pub in_page: Option<Outcome>,
    pub marks: Vec<Mark>,
    /// Where the wall's message is, tried in order (else the title).
    pub message: Vec<Css>,
}

/// Every part of a mark must hold.
#[derive(Debug, Clone, Default)]
pub struct Mark {
    /// A visible element.
    pub css: Option<Css>,
    /// A script, iframe, form or link source (visible or not: a loaded script is evidence).
    pub src: Option<Regex>,
    /// The page's title or visible text.
    pub text: Option<Regex>,
    /// The page shows little else (a wall page, not a portal page that loads a vendor script).
    pub small: bool,
}

/// The longest visible text (in characters) a page may have and still count as "small".
pub const SMALL_PAGE: usize = 600;

/// Where messages are shown.
#[derive(Debug, Clone, Default)]
pub struct Surfaces {
    /// A message here that no concept or signal explains stops the pairing (the safe default).
    pub error: Vec<Css>,
    /// Status and live regions: error surfaces before the login, notices behind it.
    pub status: Vec<Css>,
    /// Read for concepts; never stops a pairing on its own.
    pub notice: Vec<Css>,
    /// Never a message surface (cookie banners and consent dialogs speak of "terms" and "accept").
    pub exclude: Vec<Css>,
    /// Each list as one selector group, so a page is walked once per list, not once per selector.
    pub grouped: Grouped,
}

#[derive(Debug, Clone, Default)]
pub struct Grouped {
    pub error: Option<Css>,
    pub status: Option<Css>,
    pub notice: Option<Css>,
    pub exclude: Option<Css>,
}

fn group(list: &[Css]) -> Option<Css> {
    if list.is_empty() {
        return None;
    }
    let source = list
        .iter()
        .map(|c| c.source.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    crate::provider::spec::parse_css(&source).ok()
}

impl Grouped {
    fn of(error: &[Css], status: &[Css], notice: &[Css], exclude: &[Css]) -> Grouped {
        Grouped {
            error: group(error),
            status: group(status),
            notice: group(notice),
            exclude: group(exclude),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WallsFile {
    walls: Vec<WallFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WallFile {
    vendor: String,
    #[serde(with = "outcome::compact")]
    outcome: Outcome,
    #[serde(default, with = "outcome::compact::option")]
    in_page: Option<Outcome>,
    #[serde(default)]
    message: Vec<String>,
    marks: Vec<MarkFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkFile {
    #[serde(default)]
    css: Option<String>,
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    small: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurfacesFile {
    #[serde(default)]
    pub error: Vec<String>,
    #[serde(default)]
    pub status: Vec<String>,
    #[serde(default)]
    pub notice: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// Compiles a selector or regex, naming where it came from.
pub trait Compile {
    fn css(&self, at: &str, source: &str) -> Result<Css, String>;
    fn regex(&self, at: &str, source: &str) -> Result<Regex, String>;
}

pub fn parse_walls(text: &str, c: &impl Compile) -> Result<Vec<Wall>, String> {
    let file: WallsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.walls
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let marks = w
                .marks
                .into_iter()
                .enumerate()
                .map(|(j, m)| {
                    let at = format!("walls[{i}] ({}).marks[{j}]", w.vendor);
                    if m.css.is_none() && m.src.is_none() && m.text.is_none() {
                        return Err(format!("{at}: a mark needs `css`, `src` or `text`"));
                    }
                    Ok(Mark {
                        css: m.css.map(|s| c.css(&format!("{at}.css"), &s)).transpose()?,
                        src: m
                            .src
                            .map(|s| c.regex(&format!("{at}.src"), &s))
                            .transpose()?,
                        text: m
                            .text
                            .map(|s| c.regex(&format!("{at}.text"), &s))
                            .transpose()?,
                        small: m.small,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let message = w
                .message
                .iter()
                .enumerate()
                .map(|(j, m)| c.css(&format!("walls[{i}].message[{j}]"), m))
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Wall {
                vendor: w.vendor,
                outcome: w.outcome,
                in_page: w.in_page,
                marks,
                message,
            })
        })
        .collect()
}

pub fn parse_surfaces(text: &str, c: &impl Compile) -> Result<Surfaces, String> {
    let file: SurfacesFile = toml::from_str(text).map_err(|e| e.to_string())?;
    compile_surfaces(&file, "surfaces", c)
}

pub fn compile_surfaces(
    file: &SurfacesFile,
    at: &str,
    c: &impl Compile,
) -> Result<Surfaces, String> {
    let list = |name: &str, sources: &[String]| {
        sources
            .iter()
            .enumerate()
            .map(|(i, s)| c.css(&format!("{at}.{name}[{i}]"), s))
            .collect::<Result<Vec<_>, String>>()
    };
    let (error, status) = (list("error", &file.error)?, list("status", &file.status)?);
    let (notice, exclude) = (
        list("notice", &file.notice)?,
        list("exclude", &file.exclude)?,
    );
    Ok(Surfaces {
        grouped: Grouped::of(&error, &status, &notice, &exclude),
        error,
        status,
        notice,
        exclude,
    })
}

impl Surfaces {
    /// These surfaces and a spec's own, together.
    pub fn with(&self, more: &Surfaces) -> Surfaces {
        let join = |a: &[Css], b: &[Css]| -> Vec<Css> { a.iter().chain(b).cloned().collect() };
        let (error, status) = (
            join(&self.error, &more.error),
            join(&self.status, &more.status),
        );
        let (notice, exclude) = (
            join(&self.notice, &more.notice),
            join(&self.exclude, &more.exclude),
        );
        Surfaces {
            grouped: Grouped::of(&error, &status, &notice, &exclude),
            error,
            status,
            notice,
            exclude,
        }
    }
}
