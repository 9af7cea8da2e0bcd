//! The manual's links resolve: every relative link and `#anchor` in
//! README.md, docs/*.md and the crates' REFERENCE.md pointers names a file
//! that exists and, for an anchor, a heading in it (GitHub's anchor rules).
//! Links to other sites are not fetched (tests run offline).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// The Markdown files of the manual.
fn manual() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    for krate in ["dialog", "crm-bridge", "models"] {
        files.push(root.join(krate).join("REFERENCE.md"));
    }
    files
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (letters,
/// digits, `-` and `_` stay), spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text; repeated headings get `-1`, `-2`….
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = heading.take() {
                    let base = slug(&h);
                    let n = seen.entry(base.clone()).or_insert(0);
                    let anchor = if *n == 0 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    };
                    *n += 1;
                    out.insert(anchor);
                }
            }
            _ => {}
        }
    }
    out
}

/// Every link and image target in a Markdown text.
fn links(markdown: &str) -> Vec<String> {
    Parser::new_ext(markdown, Options::ENABLE_TABLES)
        .filter_map(|event| match event {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => Some(dest_url.to_string()),
            _ => None,
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What is wrong with the links of one file.
fn broken_links(file: &Path) -> Vec<String> {
    let text = read(file);
    let dir = file.parent().expect("a folder");
    let mut broken = Vec::new();
    for link in links(&text) {
        if link.contains("://") || link.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match link.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (link.as_str(), None),
        };
        let target = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        if !target.exists() {
            broken.push(format!("{}: `{link}`: no such file", file.display()));
            continue;
        }
        if let Some(anchor) = anchor {
            if target.extension().is_none_or(|e| e != "md") {
                broken.push(format!(
                    "{}: `{link}`: an anchor into a non-Markdown file",
                    file.display()
                ));
            } else if !anchors(&read(&target)).contains(anchor) {
                broken.push(format!(
                    "{}: `{link}`: no heading with that anchor",
                    file.display()
                ));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_and_anchor_in_the_manual_resolves() {
    let broken: Vec<String> = manual().iter().flat_map(|f| broken_links(f)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_links_every_doc() {
    let readme = read(&root().join("README.md"));
    let linked: BTreeSet<String> = links(&readme).into_iter().collect();
    for doc in manual()
        .iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("docs")))
    {
        let name = format!(
            "docs/{}",
            doc.file_name().and_then(|n| n.to_str()).unwrap_or("")
        );
        assert!(linked.contains(&name), "README.md does not link {name}");
    }
}

#[test]
fn anchors_follow_githubs_rules() {
    let text = "# Speech and models (ASR, intent, TTS)\n## `embedded` — the default\n## Tests\n## Tests\n### whisper (`asr::whisper`)\n";
    let a = anchors(text);
    for expected in [
        "speech-and-models-asr-intent-tts",
        "embedded--the-default",
        "tests",
        "tests-1",
        "whisper-asrwhisper",
    ] {
        assert!(a.contains(expected), "{expected} not in {a:?}");
    }
    // And the check can fail.
    let dir = std::env::temp_dir().join(format!("vb-doc-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.md");
    std::fs::write(&file, "# A\n[x](#a) [y](#b) [z](missing.md) [w](a.md#a)\n").unwrap();
    let broken = broken_links(&file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(broken.len(), 2, "{broken:?}");
}

#[test]
fn heading_levels_do_not_skip() {
    // A document starts with one `#` title and never jumps two levels.
    for file in manual() {
        let mut last = 0;
        let mut titles = 0;
        for event in Parser::new_ext(&read(&file), Options::ENABLE_TABLES) {
            if let Event::Start(Tag::Heading { level, .. }) = event {
                let n = level as usize;
                if level == HeadingLevel::H1 {
                    titles += 1;
                }
                assert!(
                    n <= last + 1,
                    "{}: a heading jumps from level {last} to {n}",
                    file.display()
                );
                last = n;
            }
        }
        assert_eq!(titles, 1, "{}: {titles} top-level titles", file.display());
    }
}
