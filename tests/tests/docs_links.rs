//! The repository's Markdown holds together: every relative link resolves (to a file or folder
//! that exists, and to a heading when it names one), every `docs/….md` a page mentions exists,
//! the contract's pages are all reachable from `docs/README.md`, and no page sends readers to
//! a `SPEC.md` that is not in the repository (the contract is `docs/`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Folders never walked: build output, installed packages, version control.
const SKIPPED_DIRS: [&str; 3] = ["target", "node_modules", ".git"];

/// Text that points at the contract's old home outside the repository.
const FORBIDDEN: [&str; 2] = ["SPEC.md", "SPEC §"];

/// The contract's pages, each linked from `docs/README.md`.
const CONTRACT_PAGES: [&str; 5] = [
    "protocol.md",
    "refresh-policy.md",
    "storage.md",
    "configuration.md",
    "security.md",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package is a folder of the repository")
        .to_path_buf()
}

#[test]
fn every_relative_link_in_the_markdown_files_resolves() {
    let root = repo_root();
    let files = markdown_files(&root);
    let names: Vec<String> = files.iter().map(|f| shown(&root, f)).collect();
    for expected in ["README.md", "docs/README.md", "protocol/README.md"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not found; found {names:?}"
        );
    }
    let problems = check_links(&root, &files);
    assert!(
        problems.is_empty(),
        "broken links in the Markdown files:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_page_points_at_a_spec_outside_the_repository() {
    let root = repo_root();
    let problems = check_forbidden(&root, &markdown_files(&root));
    assert!(
        problems.is_empty(),
        "the contract is docs/; link the right page there instead:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_contract_index_links_every_contract_page() {
    let root = repo_root();
    let index = root.join("docs/README.md");
    let text = fs::read_to_string(&index).expect("docs/README.md exists");
    let linked: BTreeSet<String> = links(&text)
        .into_iter()
        .map(|(_, target)| target.split('#').next().unwrap_or("").to_owned())
        .collect();
    for page in CONTRACT_PAGES {
        assert!(root.join("docs").join(page).is_file(), "docs/{page} exists");
        assert!(
            linked.contains(page),
            "docs/README.md links {page}; it links {linked:?}"
        );
    }
}

#[test]
fn each_contents_line_lists_every_section_of_its_page() {
    let root = repo_root();
    let mut checked = 0;
    for file in markdown_files(&root.join("docs")) {
        let text = fs::read_to_string(&file).unwrap();
        let problems = contents_problems(&text);
        if text.lines().any(|l| l.starts_with("Contents:")) {
            checked += 1;
        }
        assert!(
            problems.is_empty(),
            "{}: {}",
            shown(&root, &file),
            problems.join("; ")
        );
    }
    assert!(checked >= 2, "pages with a Contents line: {checked}");
}

#[test]
fn the_contents_check_finds_a_missing_section() {
    let text = "# T\n\nContents: [A](#a) ·\n[C](#c)\n\n## A\n\n## B\n\n### B.1\n\n## C\n";
    assert_eq!(contents_problems(text), ["misses `## B` (#b)"]);
    let text = "# T\n\nContents: [A](#a) · [B](#b)\n\n## A\n\n## B\n";
    assert!(contents_problems(text).is_empty());
}

/// A page's `Contents:` paragraph must link each of its `## ` sections.
fn contents_problems(text: &str) -> Vec<String> {
    let Some(start) = text.lines().position(|l| l.starts_with("Contents:")) else {
        return Vec::new();
    };
    let paragraph: Vec<&str> = text
        .lines()
        .skip(start)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    let listed: BTreeSet<String> = links(&paragraph.join("\n"))
        .into_iter()
        .filter_map(|(_, target)| target.strip_prefix('#').map(str::to_owned))
        .collect();
    let mut taken = BTreeSet::new();
    let mut problems = Vec::new();
    for (_, line) in prose_lines(text) {
        let Some(title) = line.strip_prefix("## ") else {
            continue;
        };
        let anchor = slug(title.trim_end_matches('#').trim_end(), &taken);
        if !listed.contains(&anchor) {
            problems.push(format!("misses `## {title}` (#{anchor})"));
        }
        taken.insert(anchor);
    }
    problems
}

/// The checker itself, on a small repository made for the purpose: it must find what is
/// broken and nothing else.
#[test]
fn the_checker_finds_broken_links_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::create_dir_all(root.join("target/doc")).unwrap();
    fs::create_dir_all(root.join("node_modules/x")).unwrap();
    fs::write(
        root.join("docs/page.md"),
        "# Page\n\n## Flags, environment and precedence\n\n## `config.toml`\n\n## Twice\n\n## Twice\n\nBack to [the top](../README.md#top).\n",
    )
    .unwrap();
    fs::write(
        root.join("README.md"),
        "# Top\n\
         \n\
         Good: [page](docs/page.md), [heading](docs/page.md#flags-environment-and-precedence),\n\
         [code heading](docs/page.md#configtoml), [second twin](docs/page.md#twice-1), [folder](docs/),\n\
         [self](#top), [web](https://example.com/x), [mail](mailto:a@example.com), `[code](nowhere.md)`.\n\
         Broken: [missing](docs/missing.md) and [bad anchor](docs/page.md#nope) and [self anchor](#nope).\n\
         Outside: [escape](../../etc/passwd).\n\
         Mentioned: see docs/page.md and docs/gone.md.\n\
         \n\
         ```\n\
         [fenced](not-checked.md)\n\
         ```\n\
         \n\
         [ref]: docs/also-missing.md\n",
    )
    .unwrap();
    fs::write(root.join("target/doc/README.md"), "[x](nowhere.md)\n").unwrap();
    fs::write(
        root.join("node_modules/x/README.md"),
        "[x](nowhere.md) SPEC.md\n",
    )
    .unwrap();
    fs::write(
        root.join("docs/old.md"),
        "The contract is SPEC.md; see SPEC §7.\n",
    )
    .unwrap();

    let files = markdown_files(root);
    let names: Vec<String> = files.iter().map(|f| shown(root, f)).collect();
    assert_eq!(names, ["README.md", "docs/old.md", "docs/page.md"]);

    let problems = check_links(root, &files);
    let expected = [
        "README.md:6: link `docs/missing.md`: no such file or folder",
        "README.md:6: link `docs/page.md#nope`: docs/page.md has no heading with the anchor `nope`",
        "README.md:6: link `#nope`: README.md has no heading with the anchor `nope`",
        "README.md:7: link `../../etc/passwd`: points outside the repository",
        "README.md:14: link `docs/also-missing.md`: no such file or folder",
        "README.md:8: mentions `docs/gone.md`, which does not exist",
    ];
    assert_eq!(problems, expected, "{problems:#?}");

    let problems = check_forbidden(root, &files);
    assert_eq!(
        problems,
        [
            "docs/old.md:1: mentions `SPEC.md`",
            "docs/old.md:1: mentions `SPEC §`"
        ]
    );
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    let text = "# auth-app-server: the contract\n## `getAuthStatus`\n## Across processes: the lock\n## Twice\n## Twice\n```\n# not a heading\n```\n## [Linked](x.md) title ##\nSetext\n======\n";
    assert_eq!(
        anchors(text),
        [
            "auth-app-server-the-contract",
            "getauthstatus",
            "across-processes-the-lock",
            "twice",
            "twice-1",
            "linked-title",
            "setext",
        ]
        .into_iter()
        .map(String::from)
        .collect::<BTreeSet<_>>()
    );
}

/// Every `.md` file under `root`, sorted, outside the skipped folders.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_ref()) {
                    folders.push(entry.path());
                }
            } else if kind.is_file() && name.ends_with(".md") {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// A path as the failure messages show it: relative to the repository, with `/`.
fn shown(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Problems with the links and `docs/` mentions of `files`, one line each.
fn check_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        let name = shown(root, file);
        let links = links(&text);
        for (line, target) in &links {
            if let Err(why) = resolve(root, file, target) {
                problems.push(format!("{name}:{line}: link `{target}`: {why}"));
            }
        }
        // A mention that is a link's own target was checked as a link.
        let linked = |line: usize, mention: &str| {
            links
                .iter()
                .any(|(l, target)| *l == line && target.split('#').next() == Some(mention))
        };
        for (line, mention) in docs_mentions(&text) {
            if !linked(line, &mention) && !root.join(&mention).is_file() {
                problems.push(format!(
                    "{name}:{line}: mentions `{mention}`, which does not exist"
                ));
            }
        }
    }
    problems
}

/// Every mention of the old contract, one line each.
fn check_forbidden(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for forbidden in FORBIDDEN {
                if line.contains(forbidden) {
                    problems.push(format!(
                        "{}:{}: mentions `{forbidden}`",
                        shown(root, file),
                        number + 1
                    ));
                }
            }
        }
    }
    problems
}

/// Checks one link target written in `file`.
fn resolve(root: &Path, file: &Path, target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("empty target".into());
    }
    if has_scheme(target) {
        return Ok(());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let path = percent_decode(path);
    let resolved = if path.is_empty() {
        file.to_path_buf()
    } else if let Some(from_root) = path.strip_prefix('/') {
        root.join(from_root)
    } else {
        file.parent().unwrap().join(&path)
    };
    let resolved = normalize(&resolved).ok_or("points outside the repository")?;
    if !resolved.starts_with(root) {
        return Err("points outside the repository".into());
    }
    if !resolved.exists() {
        return Err("no such file or folder".into());
    }
    let is_markdown = resolved.extension().is_some_and(|e| e == "md") && resolved.is_file();
    if let Some(anchor) = anchor.filter(|a| !a.is_empty() && is_markdown) {
        let text = fs::read_to_string(&resolved).unwrap();
        if !anchors(&text).contains(anchor) {
            return Err(format!(
                "{} has no heading with the anchor `{anchor}`",
                shown(root, &resolved)
            ));
        }
    }
    Ok(())
}

/// `http:`, `https:`, `mailto:` and any other URL scheme: not a file in the repository.
fn has_scheme(target: &str) -> bool {
    target.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// Resolves `.` and `..` without touching the disk; `None` when `..` climbs above the start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lines of `text` outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<(char, usize)> = None;
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |m| trimmed.chars().take_while(|c| *c == m).count());
        match (fence, marker) {
            (None, Some(m)) if run >= 3 => fence = Some((m, run)),
            (Some((m, open)), Some(c))
                if c == m && run >= open && trimmed[run..].trim().is_empty() =>
            {
                fence = None
            }
            (None, _) => lines.push((number + 1, line)),
            (Some(_), _) => {}
        }
    }
    lines
}

/// `line` without its code spans.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + ticks..];
        let fence = "`".repeat(ticks);
        match after.find(&fence) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                out.push_str(&rest[start..start + ticks]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The link targets of `text` (inline `](target)` and reference definitions `[x]: target`),
/// outside code, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        let line = without_code_spans(line);
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some(at) = trimmed.find(']')
            && trimmed[at..].starts_with("]:")
        {
            let target = trimmed[at + 2..].split_whitespace().next().unwrap_or("");
            let target = target.trim_start_matches('<').trim_end_matches('>');
            found.push((number, target.to_owned()));
            continue;
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let target = if let Some(angled) = rest.strip_prefix('<') {
                angled.split('>').next().unwrap_or("")
            } else {
                let mut depth = 0usize;
                let end = rest
                    .char_indices()
                    .find(|&(_, c)| match c {
                        '(' => {
                            depth += 1;
                            false
                        }
                        ')' if depth == 0 => true,
                        ')' => {
                            depth -= 1;
                            false
                        }
                        c => c.is_whitespace(),
                    })
                    .map_or(rest.len(), |(i, _)| i);
                &rest[..end]
            };
            found.push((number, target.to_owned()));
        }
    }
    found
}

/// Paths `docs/<name>.md` named anywhere in `text` (code included), with their line numbers;
/// a mention inside a longer path (`../docs/x.md`, `fuzz/docs/x.md`) is left to the link check.
fn docs_mentions(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(at) = line[from..].find("docs/").map(|i| i + from) {
            from = at + "docs/".len();
            let before = line[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || "/._-".contains(c)) {
                continue;
            }
            let name: String = line[from..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                .collect();
            // A full stop after the name ends the sentence, not the name.
            let name = name.trim_end_matches('.');
            if let Some(stem) = name.strip_suffix(".md")
                && !stem.is_empty()
            {
                found.push((number + 1, format!("docs/{name}")));
            }
        }
    }
    found
}

/// The anchors GitHub gives the headings of `text`: lowercase, punctuation dropped, spaces as
/// `-`, `-1`, `-2`, ... for repeats; plus explicit `<a name>` / `<a id>` anchors.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut previous: Option<&str> = None;
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim();
        let heading = if let Some(hashes) = trimmed.strip_prefix('#') {
            let level = 1 + hashes.chars().take_while(|c| *c == '#').count();
            let title = trimmed[level..].strip_prefix(' ');
            title
                .filter(|_| level <= 6)
                .map(|t| t.trim_end_matches('#').trim_end())
        } else if !trimmed.is_empty()
            && trimmed.chars().all(|c| c == '=')
            && previous.is_some_and(|p| !p.trim().is_empty())
        {
            previous.map(str::trim)
        } else {
            None
        };
        if let Some(title) = heading {
            let slug = slug(title, &anchors);
            anchors.insert(slug);
        }
        for marker in ["<a name=\"", "<a id=\""] {
            let mut rest = line;
            while let Some(at) = rest.find(marker) {
                rest = &rest[at + marker.len()..];
                if let Some(end) = rest.find('"') {
                    anchors.insert(rest[..end].to_owned());
                }
            }
        }
        previous = Some(line);
    }
    anchors
}

/// The anchor of a heading titled `title`, given the anchors already taken.
fn slug(title: &str, taken: &BTreeSet<String>) -> String {
    // A link in a heading contributes its text only.
    let mut text = String::new();
    let mut rest = title;
    while let Some(at) = rest.find("](") {
        text.push_str(&rest[..at]);
        rest = &rest[at + 2..];
        rest = rest.find(')').map_or("", |end| &rest[end + 1..]);
    }
    text.push_str(rest);
    let base: String = text
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect();
    let mut candidate = base.clone();
    let mut n = 0;
    while taken.contains(&candidate) {
        n += 1;
        candidate = format!("{base}-{n}");
    }
    candidate
}
