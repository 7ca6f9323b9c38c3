//! Interactive `top` on a terminal (ratatui + crossterm): the cgroup tree with sort, filter,
//! expand/collapse and a drill into a cgroup's processes, laid out for 80 columns.
//!
//! [`View`] is the whole state and draws itself on any ratatui backend (the tests use
//! `TestBackend`); [`run`] feeds it samples from a background thread and keys from the
//! terminal. The first frame says it is collecting: rates need two samples.

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table, TableState};
use ratatui::Frame;

use atomik::track::monitor::{CgroupRow, Monitor, ProcessRow, Snapshot};

/// A numeric column of the interactive table: header, width, value, cell text.
struct Col {
    header: &'static str,
    width: u16,
    get: fn(&CgroupRow) -> Option<f64>,
    bytes: bool,
}

/// The columns that fit 80 columns beside a 19-column name: the cgroup's own memory, the
/// processes' sum, and the activity atomik measures.
const COLS: &[Col] = &[
    Col { header: "PROCS", width: 5, get: |r| Some(r.processes as f64), bytes: false },
    Col {
        header: "MEM",
        width: 7,
        get: |r| r.accounting.as_ref().and_then(|a| a.current).map(|v| v as f64),
        bytes: true,
    },
    Col {
        header: "%LIM",
        width: 5,
        get: |r| r.accounting.as_ref().and_then(|a| a.limit_percent()),
        bytes: false,
    },
    Col { header: "ΣVmRSS", width: 7, get: |r| Some(r.rss_bytes as f64), bytes: true },
    Col { header: "WRIT/s", width: 7, get: |r| r.written_per_s, bytes: false },
    Col { header: "COWBRK/s", width: 8, get: |r| r.cow_breaks_per_s, bytes: false },
    Col { header: "DUP", width: 7, get: |r| r.dup_bytes.map(|v| v as f64), bytes: true },
    Col { header: "KSM-SAVE", width: 8, get: |r| r.ksm_profit_bytes.map(|v| v as f64), bytes: true },
];

/// Bytes as 4 significant characters and a unit: `317.9M`, `1.2G`, `512K`.
pub fn human_bytes(v: f64) -> String {
    let units = [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (u, d) in units {
        if v.abs() >= d as f64 {
            let x = v / d as f64;
            return if x >= 100.0 { format!("{x:.0}{u}") } else { format!("{x:.1}{u}") };
        }
    }
    format!("{v:.0}")
}

fn cell(c: &Col, r: &CgroupRow) -> String {
    match (c.get)(r) {
        None => "-".into(),
        Some(v) if c.bytes => human_bytes(v),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e6 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

/// What a key did.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Keep going.
    Continue,
    /// Quit.
    Quit,
}

/// The interactive state: the latest sample and how it is looked at.
#[derive(Debug, Default)]
pub struct View {
    snap: Option<Snapshot>,
    /// Index into [`COLS`] of the sort column; `None`: by cgroup path.
    sort: Option<usize>,
    /// Ascending instead of descending.
    reverse: bool,
    filter: String,
    editing_filter: bool,
    expanded: HashSet<String>,
    selected: usize,
    /// The cgroup whose processes are shown.
    drill: Option<String>,
    /// The subtree `top` was asked for: the tree's root.
    root: String,
}

/// One line of the cgroup table.
struct Line0 {
    cgroup: String,
    depth: usize,
    children: bool,
}

impl View {
    /// A view of `root` (the `--cgroup` subtree), sorted by `sort_key` (a column key of
    /// `top`; unknown keys sort by memory).
    pub fn new(root: &str, sort_key: &str) -> View {
        let sort = match sort_key {
            "cgroup" => None,
            "processes" => Some(0),
            "memory_current_bytes" => Some(1),
            "memory_limit_percent" => Some(2),
            "written_per_s" => Some(4),
            "cow_breaks_per_s" => Some(5),
            "dup_bytes" => Some(6),
            "ksm_profit_bytes" => Some(7),
            _ => Some(3),
        };
        let root = if root.len() > 1 { root.trim_end_matches('/').to_owned() } else { "/".to_owned() };
        View { sort, expanded: HashSet::from([root.clone()]), root, ..View::default() }
    }

    /// Takes a new sample.
    pub fn update(&mut self, snap: Snapshot) {
        self.snap = Some(snap);
    }

    fn sort_value(&self, r: &CgroupRow) -> f64 {
        self.sort.and_then(|i| (COLS[i].get)(r)).unwrap_or(-1.0)
    }

    fn ordered(&self, rows: &mut Vec<&CgroupRow>) {
        rows.sort_by(|a, b| {
            let o = match self.sort {
                None => a.cgroup.cmp(&b.cgroup),
                Some(_) => {
                    self.sort_value(b).total_cmp(&self.sort_value(a)).then_with(|| a.cgroup.cmp(&b.cgroup))
                }
            };
            if self.reverse {
                o.reverse()
            } else {
                o
            }
        });
    }

    /// The visible cgroup lines: the tree (children under expanded parents, siblings in sort
    /// order), or with a filter every matching cgroup, flat.
    fn lines(&self) -> Vec<Line0> {
        let Some(snap) = &self.snap else { return Vec::new() };
        let parent = |cg: &str| -> Option<String> {
            if cg == "/" {
                return None;
            }
            let p = &cg[..cg.rfind('/').unwrap_or(0)];
            Some(if p.is_empty() { "/".into() } else { p.into() })
        };
        let mut kids: BTreeMap<Option<String>, Vec<&CgroupRow>> = BTreeMap::new();
        for r in &snap.rows {
            let p = if r.cgroup == self.root { None } else { parent(&r.cgroup) };
            kids.entry(p).or_default().push(r);
        }
        if !self.filter.is_empty() {
            let f = self.filter.to_lowercase();
            let mut m: Vec<&CgroupRow> = snap
                .rows
                .iter()
                .filter(|r| {
                    r.cgroup.to_lowercase().contains(&f)
                        || r.identity.as_ref().is_some_and(|i| i.name.to_lowercase().contains(&f))
                })
                .collect();
            self.ordered(&mut m);
            return m
                .into_iter()
                .map(|r| Line0 { cgroup: r.cgroup.clone(), depth: 0, children: false })
                .collect();
        }
        let mut out = Vec::new();
        let mut stack: Vec<(&CgroupRow, usize)> = Vec::new();
        let mut top = kids.get(&None).cloned().unwrap_or_default();
        self.ordered(&mut top);
        stack.extend(top.into_iter().rev().map(|r| (r, 0)));
        while let Some((r, depth)) = stack.pop() {
            let mut ch = kids.get(&Some(r.cgroup.clone())).cloned().unwrap_or_default();
            out.push(Line0 { cgroup: r.cgroup.clone(), depth, children: !ch.is_empty() });
            if self.expanded.contains(&r.cgroup) {
                self.ordered(&mut ch);
                stack.extend(ch.into_iter().rev().map(|c| (c, depth + 1)));
            }
        }
        out
    }

    fn row(&self, cg: &str) -> Option<&CgroupRow> {
        self.snap.as_ref()?.rows.iter().find(|r| r.cgroup == cg)
    }

    fn processes(&self, cg: &str) -> Vec<&ProcessRow> {
        let Some(snap) = &self.snap else { return Vec::new() };
        let mut p: Vec<&ProcessRow> =
            snap.processes.iter().filter(|p| atomik::track::cgroup::in_subtree(&p.cgroup, cg)).collect();
        p.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
        p
    }

    fn selected_cgroup(&self) -> Option<String> {
        self.lines().get(self.selected).map(|l| l.cgroup.clone())
    }

    /// Handles one key.
    pub fn key(&mut self, k: KeyEvent) -> Action {
        if k.kind == KeyEventKind::Release {
            return Action::Continue;
        }
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.editing_filter {
            match k.code {
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.editing_filter = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.selected = 0;
            return Action::Continue;
        }
        let n = if let Some(cg) = &self.drill { self.processes(cg).len() } else { self.lines().len() };
        match k.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc | KeyCode::Backspace if self.drill.is_some() => {
                self.drill = None;
            }
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1))
            }
            KeyCode::Char('s') => {
                self.sort = match self.sort {
                    None => Some(0),
                    Some(i) if i + 1 < COLS.len() => Some(i + 1),
                    Some(_) => None,
                }
            }
            KeyCode::Char('r') => self.reverse = !self.reverse,
            KeyCode::Char('/') => {
                self.editing_filter = true;
                self.filter.clear();
            }
            KeyCode::Right | KeyCode::Char('+') | KeyCode::Char('l') if self.drill.is_none() => {
                if let Some(cg) = self.selected_cgroup() {
                    self.expanded.insert(cg);
                }
            }
            KeyCode::Left | KeyCode::Char('-') | KeyCode::Char('h') if self.drill.is_none() => {
                if let Some(cg) = self.selected_cgroup() {
                    self.expanded.remove(&cg);
                }
            }
            KeyCode::Enter if self.drill.is_none() => {
                self.drill = self.selected_cgroup();
                self.selected = 0;
            }
            _ => {}
        }
        Action::Continue
    }

    /// Draws the view into `f`.
    pub fn draw(&self, f: &mut Frame) {
        let [title, body, help] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(2)])
                .areas(f.area());
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let Some(snap) = &self.snap else {
            f.render_widget(Paragraph::new("atomikctl top — collecting… (rates need two samples)"), title);
            f.render_widget(Paragraph::new("q quit"), help);
            return;
        };
        let sort = self.sort.map_or("cgroup", |i| COLS[i].header);
        let order = if self.reverse { "↑" } else { "↓" };
        let mut t =
            format!("atomikctl top  {} · interval {:.1}s · sort {sort}{order}", self.root, snap.interval_s);
        if self.editing_filter || !self.filter.is_empty() {
            t.push_str(&format!(" · filter: {}{}", self.filter, if self.editing_filter { "▏" } else { "" }));
        }
        f.render_widget(Paragraph::new(t).style(bold), title);
        let mut state = TableState::default().with_selected(Some(self.selected));
        if let Some(cg) = &self.drill {
            let procs = self.processes(cg);
            let rows = procs.iter().map(|p| {
                let rescan = match p.rescan_bytes {
                    Some(b) => format!("rescan {}/int", human_bytes(b as f64)),
                    None => p.detector.map_or("-".into(), |d| d.to_owned()),
                };
                Row::new(vec![
                    p.pid.to_string(),
                    p.name.clone(),
                    human_bytes(p.rss_bytes as f64),
                    p.written_per_s.map_or("-".into(), |v| format!("{v:.1}")),
                    p.cow_shared_pages.map_or("-".into(), |v| v.to_string()),
                    rescan,
                ])
            });
            let widths = [
                Constraint::Length(7),
                Constraint::Min(12),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(22),
            ];
            let header = Row::new(["PID", "NAME", "VmRSS", "WRIT/s", "COW-SH", "WRITES BY"]).style(bold);
            let table = Table::new(rows, widths)
                .header(header)
                .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
            f.render_stateful_widget(table, body, &mut state);
            let hint = format!("processes of {cg} ({})\nEsc back  ↑↓ move  q quit", procs.len());
            f.render_widget(Paragraph::new(hint), help);
            return;
        }
        let lines = self.lines();
        let rows = lines.iter().filter_map(|l| {
            let r = self.row(&l.cgroup)?;
            let marker = if !l.children {
                " "
            } else if self.expanded.contains(&l.cgroup) {
                "▾"
            } else {
                "▸"
            };
            let leaf = r.identity.as_ref().map(|i| i.name.clone()).unwrap_or_else(|| {
                if l.depth == 0 || !self.filter.is_empty() {
                    l.cgroup.clone()
                } else {
                    l.cgroup.rsplit('/').next().unwrap_or("").to_owned()
                }
            });
            let name = format!("{}{marker}{leaf}", "  ".repeat(l.depth.min(6)));
            Some(Row::new(std::iter::once(name).chain(COLS.iter().map(|c| cell(c, r)))))
        });
        let widths: Vec<Constraint> = std::iter::once(Constraint::Min(10))
            .chain(COLS.iter().map(|c| Constraint::Length(c.width)))
            .collect();
        let header = Row::new(std::iter::once("CGROUP").chain(COLS.iter().map(|c| c.header))).style(bold);
        let table = Table::new(rows, widths)
            .header(header)
            .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
        f.render_stateful_widget(table, body, &mut state);
        let notes = snap.missing.len() + snap.rescans.len();
        let help_text = vec![
            Line::from(format!(
                "{} cgroups · {} notes (atomikctl top --once shows them)",
                snap.rows.len(),
                notes
            )),
            Line::from("q quit ↑↓ move ←→ fold Enter procs s sort r rev / filter"),
        ];
        f.render_widget(Paragraph::new(help_text), help);
    }
}

/// Runs the interactive `top` on the terminal until `q`.
pub fn run(mut m: Monitor, view: View, interval: f64) -> Result<()> {
    let (tx, rx) = mpsc::channel::<Result<Snapshot, String>>();
    std::thread::spawn(move || {
        // The first sample only starts the rates; the second is the first shown.
        let dups = m.options().dups;
        m.options_mut().dups = false;
        let first = m.sample();
        m.options_mut().dups = dups;
        if let Err(e) = first {
            let _ = tx.send(Err(e.to_string()));
            return;
        }
        loop {
            if !super::sleep(interval) {
                return;
            }
            let s = m.sample().map_err(|e| e.to_string());
            if tx.send(s).is_err() {
                return;
            }
        }
    });
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        let mut view = view;
        loop {
            terminal.draw(|f| view.draw(f))?;
            if event::poll(Duration::from_millis(100))? {
                if let Event::Key(k) = event::read()? {
                    if view.key(k) == Action::Quit {
                        return Ok(());
                    }
                }
            }
            while let Ok(s) = rx.try_recv() {
                view.update(s.map_err(anyhow::Error::msg)?);
            }
            if super::stopped() {
                return Ok(());
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use atomik::track::accounting::Accounting;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::KeyEvent;
    use ratatui::Terminal;

    fn row(cg: &str, procs: u64, rss_mib: u64, mem_mib: Option<u64>) -> CgroupRow {
        CgroupRow {
            cgroup: cg.into(),
            processes: procs,
            rss_bytes: rss_mib << 20,
            written_per_s: Some(procs as f64 * 10.0),
            accounting: Some(Accounting {
                current: mem_mib.map(|m| m << 20),
                max: Some(1 << 30),
                ..Default::default()
            }),
            identity: atomik::track::container::identify(cg),
            ..Default::default()
        }
    }

    fn snap() -> Snapshot {
        Snapshot {
            interval_s: 2.0,
            rows: vec![
                row("/", 4, 700, None),
                row("/system.slice", 3, 600, Some(650)),
                row("/system.slice/nginx.service", 2, 500, Some(512)),
                row("/system.slice/cron.service", 1, 100, Some(120)),
                row("/user.slice", 1, 100, Some(90)),
            ],
            processes: vec![
                ProcessRow {
                    pid: 101,
                    name: "nginx".into(),
                    cgroup: "/system.slice/nginx.service".into(),
                    rss_bytes: 300 << 20,
                    rescan_bytes: Some(8 << 20),
                    ..Default::default()
                },
                ProcessRow {
                    pid: 102,
                    name: "nginx-worker".into(),
                    cgroup: "/system.slice/nginx.service".into(),
                    rss_bytes: 200 << 20,
                    ..Default::default()
                },
                ProcessRow {
                    pid: 200,
                    name: "cron".into(),
                    cgroup: "/system.slice/cron.service".into(),
                    rss_bytes: 100 << 20,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    /// The screen as lines of text, 80 × 24.
    fn screen(v: &View) -> Vec<String> {
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        t.draw(|f| v.draw(f)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..24).map(|y| (0..80).map(|x| buf[(x, y)].symbol().to_owned()).collect::<String>()).collect()
    }

    fn press(v: &mut View, keys: &str) {
        for c in keys.chars() {
            let code = match c {
                '>' => KeyCode::Right,
                '<' => KeyCode::Left,
                'v' => KeyCode::Down,
                '^' => KeyCode::Up,
                '\n' => KeyCode::Enter,
                '\x1b' => KeyCode::Esc,
                c => KeyCode::Char(c),
            };
            assert_eq!(v.key(KeyEvent::from(code)), Action::Continue, "key {c:?}");
        }
    }

    fn find(s: &[String], what: &str) -> Option<usize> {
        s.iter().position(|l| l.contains(what))
    }

    #[test]
    fn first_frame_says_it_is_collecting() {
        let s = screen(&View::new("/", "rss_bytes"));
        assert!(s[0].contains("collecting…"), "{s:#?}");
    }

    #[test]
    fn the_table_fits_80_columns_with_the_tree_folded() {
        let mut v = View::new("/", "rss_bytes");
        v.update(snap());
        let s = screen(&v);
        let header = &s[1];
        for h in ["CGROUP", "PROCS", "MEM", "%LIM", "ΣVmRSS", "WRIT/s", "COWBRK/s", "DUP", "KSM-SAVE"] {
            assert!(header.contains(h), "{h} in {header:?}");
        }
        // Root expanded, its children shown by ΣVmRSS (descending), grandchildren folded.
        let (sys, user) = (find(&s, "system.slice").unwrap(), find(&s, "user.slice").unwrap());
        assert!(sys < user, "{s:#?}");
        assert!(s[sys].contains("▸") && s[sys].contains("650M") && s[sys].contains("63.5"), "{}", s[sys]);
        assert_eq!(find(&s, "nginx"), None, "{s:#?}");
        assert!(s[22..].iter().any(|l| l.contains("q quit")), "{s:#?}");
    }

    #[test]
    fn expand_collapse_sort_filter_drill_and_quit() {
        let mut v = View::new("/", "rss_bytes");
        v.update(snap());
        // Select /system.slice (second line) and unfold it.
        press(&mut v, "v>");
        let s = screen(&v);
        let (nginx, cron) = (find(&s, "nginx.service").unwrap(), find(&s, "cron.service").unwrap());
        assert!(nginx < cron, "ΣVmRSS descending: {s:#?}");
        // Reverse: cron before nginx.
        press(&mut v, "r");
        let s = screen(&v);
        assert!(find(&s, "cron.service").unwrap() < find(&s, "nginx.service").unwrap(), "{s:#?}");
        assert!(s[0].contains("sort ΣVmRSS↑"), "{}", s[0]);
        press(&mut v, "r");
        // Sort by the next column (WRIT/s): the title says so.
        press(&mut v, "s");
        assert!(screen(&v)[0].contains("sort WRIT/s↓"));
        // Fold again.
        press(&mut v, "<");
        assert_eq!(find(&screen(&v), "nginx"), None);
        // Filter: flat list of matches.
        press(&mut v, "/nginx\n");
        let s = screen(&v);
        assert!(s[0].contains("filter: nginx"), "{}", s[0]);
        assert!(find(&s, "nginx.service").is_some() && find(&s, "user.slice").is_none(), "{s:#?}");
        // Drill into it: its processes, with the cost of a full rescan.
        press(&mut v, "\n");
        let s = screen(&v);
        assert!(find(&s, "PID").is_some() && find(&s, "nginx-worker").is_some(), "{s:#?}");
        let pid101 = s.iter().find(|l| l.trim_start().starts_with("101 ")).expect("pid 101's line");
        assert!(pid101.contains("rescan 8.0M/int"), "{s:#?}");
        assert_eq!(find(&s, "cron"), None);
        press(&mut v, "\x1b");
        assert!(find(&screen(&v), "CGROUP").is_some());
        assert_eq!(v.key(KeyEvent::from(KeyCode::Char('q'))), Action::Quit);
    }
}
