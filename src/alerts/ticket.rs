//! "Store connection alert" tickets for Epson-compatible ESC/POS receipt printers.
//! Dependencies: encoding_rs (code tables), unicode-width (columns), thiserror.
//!
//! Commands, named as in Epson's "ESC/POS Command Reference": `ESC @` Initialize
//! printer; `ESC R` Select an international character set; `ESC t` Select character
//! code table; `FS C` Select Kanji character code system; `FS &` / `FS .` Select /
//! Cancel Kanji character mode; `ESC a` Select justification; `ESC E` Turn emphasized
//! mode on/off; `GS !` Select character size (0x01: double height, same columns);
//! `GS ( k` QR Code <Function 165> select the model, <167> set the module size, <169>
//! select the error correction level, <180> store the data, <181> print the symbol;
//! `ESC d` Print and feed n lines; `GS V` <Function B> Select cut mode and cut paper.
//!
//! Code tables: en fr es pt de nl it (and unknown) WPC1252 `ESC t 16`; pl cs sk hu
//! sl hr ro WPC1250 `ESC t 45`; th Thai Character Code 11 `ESC t 21` (TIS-620 layout,
//! marks composed by Epson Thai models); ar WPC1256 `ESC t 50`; ja Kanji mode, Shift
//! JIS (`FS C 1`, `ESC t 1` for half-width kana); zh Kanji mode, GBK codes (GB18030
//! models); ko Kanji mode, KS C 5601, `ESC R 13` (0x5C prints '₩'). Others send
//! `ESC R 0` and `FS .`. Unprintable characters become '?'. Hangul wraps at spaces.
//!
//! Arabic limitation: printers print left to right and do not shape, so RTL lines
//! are sent in display order ([`rtl_visual_order`]) and print in isolated letter
//! forms, without shaping or ligatures. `plain_text` keeps the logical order.

use encoding_rs::{
    EncoderResult, Encoding, EUC_KR, GB18030, GBK, SHIFT_JIS, WINDOWS_1250, WINDOWS_1252,
    WINDOWS_1256, WINDOWS_874,
};
use std::mem::take;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

mod decode;
pub use decode::{decode, DecodeError, Printed};

#[cfg(test)]
mod tests;

const ESC: u8 = 0x1B;
const GS: u8 = 0x1D;
const FS: u8 = 0x1C;
const LF: u8 = 0x0A;
/// Largest QR payload (byte mode, level M, version 40); longer URLs print as text.
const QR_MAX_BYTES: usize = 2331;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ltr,
    Rtl,
}

/// Paper width: 80 mm = 42 columns of Font A, 58 mm = 32 columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    Cols42,
    Cols32,
}

impl Width {
    pub fn columns(self) -> usize {
        match self {
            Width::Cols42 => 42,
            Width::Cols32 => 32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// BCP-47 tag; only the base subtag is used.
    pub language: String,
    pub direction: Direction,
    pub title: String,
    pub rows: Vec<(String, String)>,
    pub steps: Vec<String>,
    pub qr: Option<String>,
    pub qr_caption: String,
    pub footer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    Wpc1252,
    Wpc1250,
    Thai,
    Wpc1256,
    ShiftJis,
    Gbk,
    Ksc,
}

impl Charset {
    fn for_language(language: &str) -> Charset {
        let base = language.split(['-', '_']).next().unwrap_or("");
        match base.to_ascii_lowercase().as_str() {
            "pl" | "cs" | "sk" | "hu" | "sl" | "hr" | "ro" => Charset::Wpc1250,
            "th" => Charset::Thai,
            "ar" => Charset::Wpc1256,
            "ja" => Charset::ShiftJis,
            "zh" => Charset::Gbk,
            "ko" => Charset::Ksc,
            _ => Charset::Wpc1252,
        }
    }

    /// (`ESC t n`, encoder).
    fn spec(self) -> (u8, &'static Encoding) {
        match self {
            Charset::Wpc1252 => (16, WINDOWS_1252),
            Charset::Wpc1250 => (45, WINDOWS_1250),
            Charset::Thai => (21, WINDOWS_874),
            Charset::Wpc1256 => (50, WINDOWS_1256),
            Charset::ShiftJis => (1, SHIFT_JIS),
            Charset::Gbk => (0, GBK),
            Charset::Ksc => (0, EUC_KR),
        }
    }

    fn kanji(self) -> bool {
        matches!(self, Charset::ShiftJis | Charset::Gbk | Charset::Ksc)
    }

    /// Appends the printer's bytes for `c`, or returns false. Codes the printers'
    /// tables lack are refused (EUC-KR's UHC extension, Shift JIS vendor rows...).
    fn encode(self, c: char, out: &mut Vec<u8>) -> bool {
        let korea = self == Charset::Ksc; // ESC R 13: 0x5C prints '₩'
        if c.is_control() || (korea && c == '\\') {
            return false;
        }
        if c.is_ascii() || (korea && c == '₩') {
            out.push(if c == '₩' { 0x5C } else { c as u8 });
            return true;
        }
        let (mut utf8, mut bytes) = ([0u8; 4], [0u8; 8]);
        let mut encoder = self.spec().1.new_encoder();
        let s = c.encode_utf8(&mut utf8);
        let (res, _, n) = encoder.encode_from_utf8_without_replacement(s, &mut bytes, true);
        let ok = matches!(res, EncoderResult::InputEmpty)
            && matches!(
                (self, &bytes[..n]),
                (Charset::Wpc1252 | Charset::Wpc1250 | Charset::Wpc1256, [0x80..=0xFF])
                    | (Charset::Thai, [0xA1..=0xFB])
                    | (Charset::ShiftJis, [0xA1..=0xDF])
                    | (Charset::ShiftJis, [0x81..=0x84 | 0x88..=0x9F | 0xE0..=0xEA, _])
                    | (Charset::Gbk, [0x81..=0xFE, 0x40..=0x7E | 0x80..=0xFE])
                    | (Charset::Ksc, [0xA1..=0xFE, 0xA1..=0xFE])
            );
        if ok {
            out.extend_from_slice(&bytes[..n]);
        }
        ok
    }

    /// The character that will be printed for `c`: itself, a look-alike, or '?'.
    fn printable(self, c: char) -> char {
        if c.is_control() || is_break_space(c) || is_invisible(c) {
            return c; // left to the line breaker
        }
        let fallbacks: &[char] = match c {
            '\u{A0}' | '\u{2007}' | '\u{202F}' => &['\u{A0}', ' '],
            '\u{2010}'..='\u{2015}' | '\u{2212}' => &['-'],
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{2032}' => &['\''],
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' => &['"'],
            '¥' => &['\u{FFE5}'],
            _ => &[],
        };
        let mut scratch = Vec::new();
        let mut candidates = std::iter::once(c).chain(fallbacks.iter().copied());
        candidates
            .find(|&f| self.encode(f, &mut scratch))
            .unwrap_or('?')
    }
}

/// Spaces at which lines may break (not the no-break spaces).
fn is_break_space(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\u{A0}' | '\u{2007}' | '\u{202F}')
}

/// Format characters that neither print nor take a column (U+200B marks a break).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{AD}' | '\u{61C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

// ------------------------------------------------------------------ line breaking

#[derive(Debug, Clone, Copy)]
enum Metric {
    /// Terminal columns per `unicode-width`.
    Display,
    /// Printer columns: double-byte codes take 2, Thai marks 0, anything else 1.
    Printer(Charset),
}

impl Metric {
    fn str(self, s: &str) -> usize {
        let Metric::Printer(cs) = self else {
            return s.width();
        };
        let col = |c: char| match cs {
            _ if cs.kanji() => {
                let mut b = Vec::new();
                cs.encode(c, &mut b);
                b.len().clamp(1, 2)
            }
            Charset::Thai => usize::from(c.width() != Some(0)),
            _ => 1,
        };
        s.chars().map(col).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Space,
    Zwsp,
    /// Ideographs, kana, Thai...: a line may break on either side.
    Open,
    Word,
}

/// A base character with its zero-width marks.
struct Cluster {
    s: String,
    w: usize,
    kind: Kind,
    base: char,
}

fn blank(k: Kind) -> bool {
    matches!(k, Kind::Space | Kind::Zwsp)
}

fn is_open(c: char) -> bool {
    matches!(c as u32, 0x0E00..=0x0EFF | 0x1000..=0x109F | 0x1780..=0x17FF | 0x2E80..=0x9FFF
        | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF | 0x20000..=0x3FFFF)
}

/// Kinsoku and Thai rules: characters that must not start / end a line.
const NO_START: &str = "、。，．・：；？！）」』】〕〉》ー々ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮ,.:;!?)]}%\u{E30}\u{E32}\u{E33}\u{E45}\u{E46}";
const NO_END: &str = "（「『【〔〈《([{\u{E40}\u{E41}\u{E42}\u{E43}\u{E44}";

fn clusters(text: &str, m: Metric) -> Vec<Cluster> {
    let mut v: Vec<Cluster> = Vec::new();
    for c in text
        .chars()
        .filter(|&c| c == '\u{200B}' || !is_invisible(c))
    {
        let (kind, c) = match c {
            '\u{200B}' => (Kind::Zwsp, c),
            _ if is_break_space(c) => (Kind::Space, ' '),
            _ if c.is_control() => (Kind::Word, '?'),
            _ if is_open(c) => (Kind::Open, c),
            _ => (Kind::Word, c),
        };
        match v.last_mut() {
            Some(l) if kind == Kind::Space && l.kind == Kind::Space => {}
            Some(l) if !blank(kind) && !blank(l.kind) && m.str(c.encode_utf8(&mut [0; 4])) == 0 => {
                l.s.push(c);
                l.w = m.str(&l.s);
            }
            _ => {
                let s = if kind == Kind::Zwsp {
                    String::new()
                } else {
                    c.to_string()
                };
                v.push(Cluster {
                    w: m.str(&s),
                    s,
                    kind,
                    base: c,
                });
            }
        }
    }
    v
}

fn can_break_before(v: &[Cluster], i: usize) -> bool {
    let (p, c) = (&v[i - 1], &v[i]);
    match (p.kind, c.kind) {
        (Kind::Space | Kind::Zwsp, _) => true,
        (_, Kind::Space | Kind::Zwsp) | (Kind::Word, Kind::Word) => false,
        _ => !NO_START.contains(c.base) && !NO_END.contains(p.base),
    }
}

/// Greedy wrap to `width` columns: breaks at spaces and around ideographs/Thai,
/// hard-breaks anything longer than a line. Marks stay with their base.
fn wrap(text: &str, width: usize, m: Metric) -> Vec<String> {
    let v = clusters(text, m);
    let width = width.max(2);
    let skip = |mut i: usize| {
        while i < v.len() && blank(v[i].kind) {
            i += 1;
        }
        i
    };
    let mut lines = Vec::new();
    let mut start = skip(0);
    while start < v.len() {
        let (mut w, mut brk, mut end) = (0, None, v.len());
        for i in start..v.len() {
            if i > start && can_break_before(&v, i) {
                brk = Some(i);
            }
            if i > start && !blank(v[i].kind) && w + v[i].w > width {
                end = brk.unwrap_or(i);
                break;
            }
            w += v[i].w;
        }
        let mut e = end;
        while e > start && blank(v[e - 1].kind) {
            e -= 1;
        }
        lines.push(v[start..e].iter().map(|c| c.s.as_str()).collect());
        start = skip(end);
    }
    lines
}

// ------------------------------------------------------------------ layout

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Title,
    Centre,
    Body,
    Rule,
}

enum Block {
    /// Text (logical order), indent in columns, style.
    Line(String, usize, Style),
    Qr(String),
}

/// `text` wrapped after a first-line `prefix`, continuation lines indented.
fn hanging(out: &mut Vec<Block>, prefix: &str, text: &str, indent: usize, cols: usize, m: Metric) {
    let lines = wrap(text, cols.saturating_sub(indent), m);
    if lines.is_empty() && !prefix.is_empty() {
        out.push(Block::Line(prefix.trim_end().into(), 0, Style::Body));
    }
    for (k, l) in lines.into_iter().enumerate() {
        out.push(match k {
            0 => Block::Line(
                prefix.to_owned() + &l,
                indent.saturating_sub(m.str(prefix)),
                Style::Body,
            ),
            _ => Block::Line(l, indent, Style::Body),
        });
    }
}

fn layout(t: &Ticket, cols: usize, m: Metric, plain: bool) -> Vec<Block> {
    let lines = |s: &str, style| -> Vec<Block> {
        wrap(s, cols, m)
            .into_iter()
            .map(|l| Block::Line(l, 0, style))
            .collect()
    };
    let (mut rows, mut steps, mut qr) = (Vec::new(), Vec::new(), Vec::new());
    for (label, value) in &t.rows {
        let label = wrap(label, usize::MAX / 4, m).concat();
        let lw = m.str(&label) + 2;
        if label.is_empty() {
            hanging(&mut rows, "", value, 0, cols, m);
        } else if lw <= cols / 2 {
            hanging(&mut rows, &format!("{label}: "), value, lw, cols, m);
        } else {
            hanging(&mut rows, "", &format!("{label}:"), 0, cols, m);
            hanging(&mut rows, "", value, 2, cols, m);
        }
    }
    for (k, step) in t.steps.iter().enumerate() {
        let prefix = format!("{}. ", k + 1);
        hanging(&mut steps, &prefix, step, prefix.len(), cols, m);
    }
    if let Some(url) = t.qr.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        qr = lines(&t.qr_caption, Style::Centre);
        if plain || url.len() > QR_MAX_BYTES {
            hanging(&mut qr, "[QR] ", url, 5, cols, m);
        } else {
            qr.push(Block::Qr(url.into()));
        }
    }
    let sections = [
        lines(&t.title, Style::Title),
        rows,
        steps,
        qr,
        lines(&t.footer, Style::Body),
    ];
    let mut out = Vec::new();
    for section in sections.into_iter().filter(|s| !s.is_empty()) {
        if !out.is_empty() {
            out.push(Block::Line("-".repeat(cols), 0, Style::Rule));
        }
        out.extend(section);
    }
    out
}

// ------------------------------------------------------------------ output

/// The ticket as a text-only preview: lines of at most `width` display columns
/// (`unicode-width`), title centred, RTL lines right-aligned in logical order.
pub fn plain_text(ticket: &Ticket, width: Width) -> String {
    let cols = width.columns();
    let mut out = String::new();
    for block in layout(ticket, cols, Metric::Display, true) {
        let Block::Line(text, indent, style) = block else {
            continue;
        };
        let free = cols.saturating_sub(indent + text.width());
        let (left, right) = match (style, ticket.direction) {
            (Style::Title | Style::Centre, _) => (free / 2, 0),
            (Style::Rule, _) | (Style::Body, Direction::Ltr) => (indent, 0),
            (Style::Body, Direction::Rtl) => (free, indent),
        };
        out.extend([" ".repeat(left), text, " ".repeat(right), "\n".into()]);
    }
    out
}

/// `GS ( k pL pH` + body.
fn gs_k(out: &mut Vec<u8>, body: &[u8]) {
    out.extend([GS, b'(', b'k', body.len() as u8, (body.len() >> 8) as u8]);
    out.extend_from_slice(body);
}

/// The bytes to send to the printer.
pub fn escpos(ticket: &Ticket, width: Width) -> Vec<u8> {
    let (cols, cs) = (width.columns(), Charset::for_language(&ticket.language));
    let fix = |s: &String| s.chars().map(|c| cs.printable(c)).collect::<String>();
    let clean = Ticket {
        title: fix(&ticket.title),
        rows: ticket.rows.iter().map(|(l, v)| (fix(l), fix(v))).collect(),
        steps: ticket.steps.iter().map(fix).collect(),
        qr_caption: fix(&ticket.qr_caption),
        footer: fix(&ticket.footer),
        ..ticket.clone()
    };
    let rtl = ticket.direction == Direction::Rtl;
    let intl = if cs == Charset::Ksc { 13 } else { 0 };
    let mut out = vec![ESC, b'@', ESC, b'R', intl, ESC, b't', cs.spec().0];
    out.extend_from_slice(match cs {
        Charset::ShiftJis => &[FS, b'C', 1, FS, b'&'][..],
        Charset::Gbk | Charset::Ksc => &[FS, b'&'],
        _ => &[FS, b'.'],
    });
    let (mut align, mut big) = (u8::MAX, false);
    for block in layout(&clean, cols, Metric::Printer(cs), false) {
        let style = if let Block::Line(_, _, s) = &block {
            *s
        } else {
            Style::Centre
        };
        let a = match style {
            Style::Title | Style::Centre => 1,
            _ => 2 * u8::from(rtl),
        };
        if a != align {
            out.extend([ESC, b'a', a]);
            align = a;
        }
        if (style == Style::Title) != big {
            big = !big;
            out.extend([ESC, b'E', u8::from(big), GS, b'!', u8::from(big)]);
        }
        match block {
            Block::Line(text, indent, style) => {
                let pad = " ".repeat(indent);
                let line = match rtl && style != Style::Rule {
                    true => rtl_visual_order(&text) + &pad,
                    false => pad + &text,
                };
                for c in line.chars() {
                    if !cs.encode(c, &mut out) {
                        out.push(b'?');
                    }
                }
            }
            Block::Qr(url) => {
                let module = if width == Width::Cols32 { 5 } else { 6 };
                gs_k(&mut out, &[49, 65, 50, 0]); // fn 165: model 2
                gs_k(&mut out, &[49, 67, module]); // fn 167: module size
                gs_k(&mut out, &[49, 69, 49]); // fn 169: error correction M
                gs_k(&mut out, &[&[49, 80, 48], url.as_bytes()].concat()); // fn 180: store
                gs_k(&mut out, &[49, 81, 48]); // fn 181: print
            }
        }
        out.push(LF);
    }
    if big {
        out.extend([ESC, b'E', 0, GS, b'!', 0]);
    }
    out.extend([ESC, b'd', 3]);
    if cs.kanji() {
        out.extend([FS, b'.']);
    }
    out.extend([GS, b'V', 66, 0]);
    out
}

/// Display order of one line of a right-to-left paragraph, for printers that
/// print left to right: runs are reversed, Latin letters and digits keep their
/// order, brackets are mirrored; no shaping. Its own inverse, so it also turns
/// decoded lines back into logical order.
pub fn rtl_visual_order(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let strong = |c: char| match c as u32 {
        0x0660..=0x0669 | 0x06F0..=0x06F9 => Some(true),
        0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF => Some(false),
        _ => c.is_alphanumeric().then_some(true),
    };
    // Neutrals are LTR between two LTR characters (or after one, for marks).
    let mut ltr: Vec<bool> = Vec::with_capacity(chars.len());
    for (k, &c) in chars.iter().enumerate() {
        let next = chars[k..].iter().find_map(|&c| strong(c));
        let prev = k > 0 && ltr[k - 1];
        let mark = c.width() == Some(0);
        ltr.push(strong(c).unwrap_or(prev && (mark || next == Some(true))));
    }
    let mut runs: Vec<(bool, Vec<char>)> = Vec::new();
    for (&c, &l) in chars.iter().zip(&ltr) {
        match runs.last_mut() {
            Some((run_l, run)) if *run_l == l => run.push(c),
            _ => runs.push((l, vec![c])),
        }
    }
    const MIRROR: [char; 10] = ['(', ')', '[', ']', '{', '}', '<', '>', '«', '»'];
    let mirror = |c: char| {
        MIRROR
            .iter()
            .position(|&m| m == c)
            .map_or(c, |p| MIRROR[p ^ 1])
    };
    let mut out = String::new();
    for (l, run) in runs.iter().rev() {
        match l {
            true => out.extend(run),
            false => out.extend(run.iter().rev().map(|&c| mirror(c))),
        }
    }
    out
}

// ------------------------------------------------------------------ interpreter
