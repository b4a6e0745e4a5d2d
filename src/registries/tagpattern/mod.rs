//! `image.tag_pattern`: a regular expression a pushed tag must match in full.
//!
//! A small engine instead of a regex crate keeps the component ~50 KB smaller (replacing
//! regex-lite took it from 409 KB to 357 KB). It compiles the pattern to a Thompson NFA
//! and runs it as a Pike VM without captures, so matching never backtracks: time is
//! linear in the tag for a given pattern.
//!
//! Syntax: literals; `.`; classes `[a-z0-9._-]`, `[^…]`; `\d \w \s \D \W \S`; escaped
//! punctuation (`\.`, `\-`, …); groups `(…)`, `(?:…)`; alternation `|`; quantifiers
//! `* + ? {n} {n,} {n,m}` (a trailing `?` for laziness is accepted: for a full match it
//! changes nothing); `^` at the start and `$` at the end (the match is anchored anyway).
//! Anything else (flags, look-around, back-references, `\b`) is an error, not a surprise.

use std::fmt;

/// A compiled tag pattern, anchored at both ends.
#[derive(Clone)]
pub struct TagPattern {
    prog: Vec<Inst>,
}

/// Why a pattern was refused (for the admin API's 400).
#[derive(Debug, PartialEq, Eq)]
pub struct PatternError(&'static str);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[derive(Clone, Debug)]
enum Node {
    Empty,
    Char(char),
    Any,
    Class(Class),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>),
}

#[derive(Clone, Debug)]
struct Class {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

#[derive(Clone, Debug)]
enum Inst {
    Char(char),
    Any,
    Class(Class),
    Split(usize, usize),
    Jmp(usize),
    Match,
}

const MAX_REPEAT: u32 = 1000;
const MAX_PROGRAM: usize = 10_000;

impl TagPattern {
    pub fn new(pattern: &str) -> Result<TagPattern, PatternError> {
        let mut parser = Parser {
            chars: pattern.chars().collect(),
            pos: 0,
        };
        if parser.peek() == Some('^') {
            parser.pos += 1;
        }
        let node = parser.alternation()?;
        if parser.peek().is_some() {
            return Err(PatternError("unbalanced )"));
        }
        let mut prog = Vec::new();
        compile(&node, &mut prog)?;
        prog.push(Inst::Match);
        Ok(TagPattern { prog })
    }

    /// Does `tag` match the whole pattern?
    pub fn matches(&self, tag: &str) -> bool {
        let n = self.prog.len();
        let mut current = Threads::new(n);
        let mut next = Threads::new(n);
        current.add(&self.prog, 0);
        for c in tag.chars() {
            if current.list.is_empty() {
                return false;
            }
            next.clear();
            for &pc in &current.list {
                let step = match &self.prog[pc] {
                    Inst::Char(x) => *x == c,
                    Inst::Any => c != '\n',
                    Inst::Class(class) => class.matches(c),
                    _ => false,
                };
                if step {
                    next.add(&self.prog, pc + 1);
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        current
            .list
            .iter()
            .any(|&pc| matches!(self.prog[pc], Inst::Match))
    }
}

/// A set of NFA states, in order, each at most once.
struct Threads {
    /// States waiting for the next character (and `Match`).
    list: Vec<usize>,
    seen: Vec<bool>,
    /// Every state marked in `seen`, including the jumps and splits passed through.
    marked: Vec<usize>,
    stack: Vec<usize>,
}

impl Threads {
    fn new(n: usize) -> Threads {
        Threads {
            list: Vec::with_capacity(n),
            seen: vec![false; n],
            marked: Vec::new(),
            stack: Vec::new(),
        }
    }

    fn clear(&mut self) {
        for &pc in &self.marked {
            self.seen[pc] = false;
        }
        self.marked.clear();
        self.list.clear();
    }

    /// Adds `pc` and everything reachable from it without consuming a character.
    fn add(&mut self, prog: &[Inst], pc: usize) {
        self.stack.push(pc);
        while let Some(pc) = self.stack.pop() {
            if std::mem::replace(&mut self.seen[pc], true) {
                continue;
            }
            self.marked.push(pc);
            match prog[pc] {
                Inst::Jmp(to) => self.stack.push(to),
                Inst::Split(a, b) => {
                    self.stack.push(b);
                    self.stack.push(a);
                }
                _ => self.list.push(pc),
            }
        }
    }
}

fn compile(node: &Node, prog: &mut Vec<Inst>) -> Result<(), PatternError> {
    if prog.len() > MAX_PROGRAM {
        return Err(PatternError("pattern too large"));
    }
    match node {
        Node::Empty => {}
        Node::Char(c) => prog.push(Inst::Char(*c)),
        Node::Any => prog.push(Inst::Any),
        Node::Class(class) => prog.push(Inst::Class(class.clone())),
        Node::Concat(nodes) => {
            for n in nodes {
                compile(n, prog)?;
            }
        }
        Node::Alt(branches) => {
            // Split(b1, next) b1 Jmp(end) Split(b2, next) b2 Jmp(end) … bn
            let mut jumps = Vec::new();
            for (i, branch) in branches.iter().enumerate() {
                if i + 1 < branches.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(branch, prog)?;
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let next = prog.len();
                    prog[split] = Inst::Split(split + 1, next);
                } else {
                    compile(branch, prog)?;
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Repeat(inner, min, max) => {
            for _ in 0..*min {
                compile(inner, prog)?;
            }
            match max {
                None => {
                    // L: Split(L+1, end) inner Jmp(L)
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(inner, prog)?;
                    prog.push(Inst::Jmp(split));
                    let end = prog.len();
                    prog[split] = Inst::Split(split + 1, end);
                }
                Some(max) => {
                    let mut splits = Vec::new();
                    for _ in *min..*max {
                        splits.push(prog.len());
                        prog.push(Inst::Split(0, 0));
                        compile(inner, prog)?;
                    }
                    let end = prog.len();
                    for s in splits {
                        prog[s] = Inst::Split(s + 1, end);
                    }
                }
            }
        }
    }
    Ok(())
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        self.pos += usize::from(found);
        found
    }

    fn alternation(&mut self) -> Result<Node, PatternError> {
        let mut branches = vec![self.concat()?];
        while self.eat('|') {
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap()
        } else {
            Node::Alt(branches)
        })
    }

    fn concat(&mut self) -> Result<Node, PatternError> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            if c == '$' && self.chars.get(self.pos + 1).is_none() {
                self.pos += 1;
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap(),
            _ => Node::Concat(items),
        })
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, PatternError> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => return self.counted(atom),
            _ => return Ok(atom),
        };
        self.pos += 1;
        self.eat('?');
        if matches!(self.peek(), Some('*' | '+' | '?' | '{')) {
            return Err(PatternError("repeated quantifier"));
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }

    fn counted(&mut self, atom: Node) -> Result<Node, PatternError> {
        self.pos += 1; // '{'
        let min = self
            .number()?
            .ok_or(PatternError("expected a number after {"))?;
        let max = if self.eat(',') {
            self.number()?
        } else {
            Some(min)
        };
        if !self.eat('}') {
            return Err(PatternError("unclosed {"));
        }
        self.eat('?');
        if max.is_some_and(|max| max < min)
            || min > MAX_REPEAT
            || max.is_some_and(|m| m > MAX_REPEAT)
        {
            return Err(PatternError("bad repetition count"));
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }

    fn number(&mut self) -> Result<Option<u32>, PatternError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if start == self.pos {
            return Ok(None);
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        digits
            .parse()
            .map(Some)
            .map_err(|_| PatternError("bad repetition count"))
    }

    fn atom(&mut self) -> Result<Node, PatternError> {
        match self.next().ok_or(PatternError("unexpected end"))? {
            '(' => {
                if self.eat('?') && !self.eat(':') {
                    return Err(PatternError("unsupported group flags"));
                }
                let inner = self.alternation()?;
                if !self.eat(')') {
                    return Err(PatternError("unclosed ("));
                }
                Ok(inner)
            }
            '[' => self.class(),
            '.' => Ok(Node::Any),
            '\\' => self.escape().map(|e| match e {
                Escaped::Char(c) => Node::Char(c),
                Escaped::Class(class) => Node::Class(class),
            }),
            '*' | '+' | '?' | '{' => Err(PatternError("quantifier without anything to repeat")),
            '^' | '$' => Err(PatternError("^ and $ only at the start and end")),
            c => Ok(Node::Char(c)),
        }
    }

    fn escape(&mut self) -> Result<Escaped, PatternError> {
        let c = self.next().ok_or(PatternError("trailing backslash"))?;
        let class = |ranges: &[(char, char)], negated| {
            Escaped::Class(Class {
                ranges: ranges.to_vec(),
                negated,
            })
        };
        const DIGIT: &[(char, char)] = &[('0', '9')];
        const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
        const SPACE: &[(char, char)] = &[('\t', '\r'), (' ', ' ')];
        Ok(match c {
            'd' => class(DIGIT, false),
            'D' => class(DIGIT, true),
            'w' => class(WORD, false),
            'W' => class(WORD, true),
            's' => class(SPACE, false),
            'S' => class(SPACE, true),
            'n' => Escaped::Char('\n'),
            't' => Escaped::Char('\t'),
            c if c.is_ascii_punctuation() => Escaped::Char(c),
            _ => return Err(PatternError("unsupported escape")),
        })
    }

    fn class(&mut self) -> Result<Node, PatternError> {
        let negated = self.eat('^');
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.next().ok_or(PatternError("unclosed ["))?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = match c {
                '\\' => match self.escape()? {
                    Escaped::Char(c) => c,
                    Escaped::Class(class) if !class.negated => {
                        ranges.extend(class.ranges);
                        continue;
                    }
                    Escaped::Class(_) => return Err(PatternError("negated class inside [ ]")),
                },
                '[' => return Err(PatternError("nested [ ]")),
                c => c,
            };
            let is_range =
                self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']');
            if is_range {
                self.pos += 1;
                let hi = match self.next() {
                    Some('\\') => match self.escape()? {
                        Escaped::Char(c) => c,
                        Escaped::Class(_) => return Err(PatternError("bad range")),
                    },
                    Some(c) => c,
                    None => return Err(PatternError("unclosed [")),
                };
                if hi < lo {
                    return Err(PatternError("bad range"));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class(Class { ranges, negated }))
    }
}

enum Escaped {
    Char(char),
    Class(Class),
}

#[cfg(test)]
mod tests;
