/**
 * Plain-words explanations of a failed solve, after pub's error reporting (solver.md, "Error Reporting"): the
 * derivation graph of the final incompatibility is walked from its leaves (external facts: dependencies, missing
 * versions) to the conclusion, one sentence per derived step; a step used more than once is numbered and later
 * referred to by its number; chains of single-cause steps are collapsed into "X depends on Y which depends on Z".
 */
import type { Version } from "../protocol/version.js";
import type { Incompatibility } from "./incompatibility.js";
import { isAny, negate, rangeText, termText, termsEqual, type Namer, type Term } from "./term.js";

export interface ExplainContext {
  readonly name: Namer;
  readonly root: string;
  readonly rootVersion: Version;
}

/** The explanation (one sentence per line) and the "what to change" hint for a terminal incompatibility. */
export function explain(inc: Incompatibility, ctx: ExplainContext): { explanation: string; hint: string } {
  return { explanation: new Reporter(ctx).report(inc), hint: hints(inc, ctx) };
}

const isDerived = (inc: Incompatibility): boolean => inc.cause.kind === "derived";
function causes(inc: Incompatibility): [Incompatibility, Incompatibility] {
  if (inc.cause.kind !== "derived") throw new Error("internal error: not derived");
  return [inc.cause.left, inc.cause.right];
}

class Reporter {
  private readonly lines: Array<[string, number | null]> = [];
  private readonly lineNumbers = new Map<Incompatibility, number>();
  private readonly derivations = new Map<Incompatibility, number>();
  private rootInc: Incompatibility | null = null;

  constructor(private readonly ctx: ExplainContext) {}

  report(inc: Incompatibility): string {
    if (!isDerived(inc)) return `Because ${this.text(inc)}, version solving failed.`;
    this.count(inc);
    this.rootInc = inc;
    this.visit(inc);
    const width = this.lineNumbers.size === 0 ? 0 : `(${this.lineNumbers.size}) `.length;
    return this.lines
      .map(([msg, n]) => (msg === "" ? "" : n === null ? " ".repeat(width) + msg : `(${n}) `.padEnd(width) + msg))
      .map((line) => line.replaceAll("\n", "\n" + " ".repeat(width)))
      .join("\n");
  }

  private count(inc: Incompatibility): void {
    const n = this.derivations.get(inc);
    if (n !== undefined) {
      this.derivations.set(inc, n + 1);
      return;
    }
    this.derivations.set(inc, 1);
    if (isDerived(inc)) for (const c of causes(inc)) this.count(c);
  }

  private write(inc: Incompatibility, message: string, numbered: boolean): void {
    if (numbered) {
      const n = this.lineNumbers.size + 1;
      this.lineNumbers.set(inc, n);
      this.lines.push([message, n]);
    } else {
      this.lines.push([message, null]);
    }
  }

  private visit(inc: Incompatibility, conclusion = false): void {
    const numbered = conclusion || (this.derivations.get(inc) ?? 0) > 1;
    const conjunction = conclusion || inc === this.rootInc ? "So," : "And";
    const text = this.text(inc);
    const chain = this.chain(inc);
    if (chain !== null && chain.length >= 3) {
      const because = this.chainText(chain);
      this.write(inc, `Because ${because},${because.includes("\n") ? "\n" : " "}${text}.`, numbered);
      return;
    }
    const [left, right] = causes(inc);
    if (isDerived(left) && isDerived(right)) {
      const leftLine = this.lineNumbers.get(left);
      const rightLine = this.lineNumbers.get(right);
      if (leftLine !== undefined && rightLine !== undefined) {
        this.write(inc, `Because ${this.and(left, right, leftLine, rightLine)}, ${text}.`, numbered);
      } else if (leftLine !== undefined || rightLine !== undefined) {
        const [withLine, withoutLine, line] = leftLine !== undefined ? [left, right, leftLine] : [right, left, rightLine!];
        this.visit(withoutLine);
        this.write(inc, `${conjunction} because ${this.text(withLine)} (${line}), ${text}.`, numbered);
      } else {
        const singleLeft = this.singleLine(left);
        const singleRight = this.singleLine(right);
        if (singleLeft || singleRight) {
          const [first, second] = singleRight ? [left, right] : [right, left];
          this.visit(first);
          this.visit(second);
          this.write(inc, `Thus, ${text}.`, numbered);
        } else {
          this.visit(left, true);
          this.lines.push(["", null]);
          this.visit(right);
          this.write(inc, `${conjunction} because ${this.text(left)} (${this.lineNumbers.get(left)}), ${text}.`, numbered);
        }
      }
    } else if (isDerived(left) || isDerived(right)) {
      const [derived, ext] = isDerived(left) ? [left, right] : [right, left];
      const derivedLine = this.lineNumbers.get(derived);
      if (derivedLine !== undefined) {
        this.write(inc, `Because ${this.and(ext, derived, null, derivedLine)}, ${text}.`, numbered);
      } else if (this.collapsible(derived)) {
        const [dl, dr] = causes(derived);
        const [collapsedDerived, collapsedExt] = isDerived(dl) ? [dl, dr] : [dr, dl];
        this.visit(collapsedDerived);
        this.write(inc, `${conjunction} because ${this.and(collapsedExt, ext, null, null)}, ${text}.`, numbered);
      } else {
        this.visit(derived);
        this.write(inc, `${conjunction} because ${this.text(ext)}, ${text}.`, numbered);
      }
    } else {
      this.write(inc, `Because ${this.and(left, right, null, null)}, ${text}.`, numbered);
    }
  }

  /** Whether `a` says "X requires Y" and `b` says "Y' requires Z" with Y within Y' (so "X requires Y which requires Z"). */
  private links(a: Incompatibility, b: Incompatibility): boolean {
    const sa = this.split(a);
    const sb = this.split(b);
    return sa !== null && sb !== null && sa[1].pkg === sb[0].pkg && negate(sa[1]).set.isSubsetOf(sb[0].set);
  }

  /**
   * A derivation that is a plain chain of dependencies, "A depends on B, which depends on C, which …", as the list
   * of those dependencies in order; null when it is anything else (or uses a step referred to elsewhere).
   */
  private chain(inc: Incompatibility): Incompatibility[] | null {
    if (!isDerived(inc) || this.split(inc) === null) return null;
    const [l, r] = causes(inc);
    const external = (x: Incompatibility): boolean => x.cause.kind === "dependency";
    if (external(l) && external(r)) {
      if (this.links(l, r)) return [l, r];
      if (this.links(r, l)) return [r, l];
      return null;
    }
    const [derived, ext] = isDerived(l) ? [l, r] : [r, l];
    if (!isDerived(derived) || !external(ext)) return null;
    if ((this.derivations.get(derived) ?? 0) > 1 || this.lineNumbers.has(derived)) return null;
    const sub = this.chain(derived);
    if (sub === null) return null;
    if (this.links(sub[sub.length - 1]!, ext)) return [...sub, ext];
    if (this.links(ext, sub[0]!)) return [ext, ...sub];
    return null;
  }

  private chainText(chain: readonly Incompatibility[]): string {
    const [first, ...rest] = chain;
    const [p, n] = this.split(first!)!;
    const links = rest.map((dep) => `which depends on ${this.term(negate(this.split(dep)![1]))}`);
    const head = `${this.term(p, true)} depends on ${this.term(negate(n))}`;
    // Short chains read as one line; long ones get a line per link.
    return chain.length <= 4 ? [head, ...links].join(", ") : [head, ...links].join(",\n  ");
  }

  private singleLine(inc: Incompatibility): boolean {
    const [l, r] = causes(inc);
    return !isDerived(l) && !isDerived(r);
  }

  private collapsible(inc: Incompatibility): boolean {
    if ((this.derivations.get(inc) ?? 0) > 1) return false;
    const [l, r] = causes(inc);
    if (isDerived(l) === isDerived(r)) return false;
    return !this.lineNumbers.has(isDerived(l) ? l : r);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Sentences
  // -------------------------------------------------------------------------------------------------------------

  private term(t: Term, every = false): string {
    return termText(t, this.ctx.name, { every, root: this.ctx.root });
  }

  /** One incompatibility as a clause. */
  text(inc: Incompatibility): string {
    const { root } = this.ctx;
    const terms = inc.terms;
    switch (inc.cause.kind) {
      case "root":
        return `${this.ctx.name(root)} is ${this.ctx.rootVersion.text}`;
      case "dependency":
        return `${this.term(terms[0]!, true)} depends on ${this.term(negate(terms[1]!))}`;
      case "noVersions": {
        const t = terms[0]!;
        const n = this.ctx.name(t.pkg);
        if (inc.cause.total === 0) return `no versions of ${n} exist`;
        if (isAny(t.set)) return `${n} has no versions`;
        return `no versions of ${n} match ${rangeText(t.set)}`;
      }
      case "derived":
        break;
    }
    if (terms.length === 0) return "version solving failed";
    if (terms.length === 1) {
      const t = terms[0]!;
      if (t.pkg === root && t.positive) return "version solving failed";
      return t.positive ? `${this.term(t, true)} is forbidden` : `${this.term(negate(t))} is required`;
    }
    const pos = terms.filter((t) => t.positive);
    const neg = terms.filter((t) => !t.positive);
    if (terms.length === 2 && pos.length === 2) return `${this.term(pos[0]!, true)} is incompatible with ${this.term(pos[1]!, true)}`;
    if (pos.length > 0 && neg.length > 0) {
      const required = neg.map((t) => this.term(negate(t))).join(" or ");
      if (pos.length === 1) return `${this.term(pos[0]!, true)} requires ${required}`;
      return `if ${pos.map((t) => this.term(t)).join(" and ")} then ${required}`;
    }
    if (pos.length > 0) return `one of ${pos.map((t) => this.term(t)).join(" or ")} must be false`;
    return `one of ${neg.map((t) => this.term(negate(t))).join(" or ")} must be true`;
  }

  /** Two incompatibilities as one clause: "A depends on both B and C", "A depends on B which depends on C", … */
  private and(a: Incompatibility, b: Incompatibility, aLine: number | null, bLine: number | null): string {
    return (
      this.requiresBoth(a, b, aLine, bLine) ??
      this.requiresThrough(a, b, aLine, bLine) ??
      this.requiresForbidden(a, b, aLine, bLine) ??
      `${this.text(a)}${aLine !== null ? ` (${aLine})` : ""} and ${this.text(b)}${bLine !== null ? ` (${bLine})` : ""}`
    );
  }

  /** The single positive term and the single negative term of a two-term "X requires Y" incompatibility. */
  private split(inc: Incompatibility): [Term, Term] | null {
    if (inc.terms.length !== 2) return null;
    const pos = inc.terms.filter((t) => t.positive);
    const neg = inc.terms.filter((t) => !t.positive);
    if (pos.length !== 1 || neg.length !== 1) return null;
    return [pos[0]!, neg[0]!];
  }

  private verb(inc: Incompatibility): string {
    return inc.cause.kind === "dependency" ? "depends on" : "requires";
  }

  private requiresBoth(a: Incompatibility, b: Incompatibility, aLine: number | null, bLine: number | null): string | null {
    const sa = this.split(a);
    const sb = this.split(b);
    if (!sa || !sb || !termsEqual(sa[0], sb[0])) return null;
    const verb = a.cause.kind === "dependency" && b.cause.kind === "dependency" ? "depends on" : "requires";
    const first = `${this.term(negate(sa[1]))}${aLine !== null ? ` (${aLine})` : ""}`;
    const second = `${this.term(negate(sb[1]))}${bLine !== null ? ` (${bLine})` : ""}`;
    return `${this.term(sa[0], true)} ${verb} both ${first} and ${second}`;
  }

  private requiresThrough(a: Incompatibility, b: Incompatibility, aLine: number | null, bLine: number | null): string | null {
    const sa = this.split(a);
    const sb = this.split(b);
    let prior: Incompatibility, latter: Incompatibility, sp: [Term, Term], sl: [Term, Term], pLine: number | null, lLine: number | null;
    // prior: X requires Y; latter: Y' requires Z, where Y lies within Y'.
    const links = (x: [Term, Term] | null, y: [Term, Term] | null): boolean =>
      x !== null && y !== null && x[1].pkg === y[0].pkg && negate(x[1]).set.isSubsetOf(y[0].set);
    if (links(sa, sb)) [prior, latter, sp, sl, pLine, lLine] = [a, b, sa!, sb!, aLine, bLine];
    else if (links(sb, sa)) [prior, latter, sp, sl, pLine, lLine] = [b, a, sb!, sa!, bLine, aLine];
    else return null;
    return (
      `${this.term(sp[0], true)} ${this.verb(prior)} ${this.term(negate(sp[1]))}${pLine !== null ? ` (${pLine})` : ""}` +
      ` which ${this.verb(latter)} ${this.term(negate(sl[1]))}${lLine !== null ? ` (${lLine})` : ""}`
    );
  }

  private requiresForbidden(a: Incompatibility, b: Incompatibility, aLine: number | null, bLine: number | null): string | null {
    let prior: Incompatibility, latter: Incompatibility, pLine: number | null, lLine: number | null;
    const one = (x: Incompatibility): boolean => x.terms.length === 1 && x.terms[0]!.positive;
    if (one(b) && this.split(a)) [prior, latter, pLine, lLine] = [a, b, aLine, bLine];
    else if (one(a) && this.split(b)) [prior, latter, pLine, lLine] = [b, a, bLine, aLine];
    else return null;
    const [p, n] = this.split(prior)!;
    const forbidden = latter.terms[0]!;
    if (n.pkg !== forbidden.pkg || !negate(n).set.isSubsetOf(forbidden.set)) return null;
    const what =
      latter.cause.kind === "noVersions"
        ? latter.cause.total === 0
          ? "which doesn't exist"
          : "which doesn't match any versions"
        : "which is forbidden";
    return `${this.term(p, true)} ${this.verb(prior)} ${this.term(negate(n))}${pLine !== null ? ` (${pLine})` : ""} ${what}${lLine !== null ? ` (${lLine})` : ""}`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// What to change
// ---------------------------------------------------------------------------------------------------------------

function leaves(inc: Incompatibility, out: Set<Incompatibility>): Set<Incompatibility> {
  if (inc.cause.kind === "derived") {
    leaves(inc.cause.left, out);
    leaves(inc.cause.right, out);
  } else {
    out.add(inc);
  }
  return out;
}

/**
 * Suggestions from the external facts the failure rests on: the root's own requirements (relax one), versions that
 * do not exist (publish one, or relax what asks for it), and other packages' requirements (update them or pick
 * other versions of the packages that depend on them).
 */
function hints(inc: Incompatibility, ctx: ExplainContext): string {
  const { name, root } = ctx;
  const text = (t: Term): string => termText(t, name, { root });
  const direct: string[] = [];
  const missing: string[] = [];
  const dependers = new Map<string, string[]>();
  for (const leaf of leaves(inc, new Set())) {
    if (leaf.cause.kind === "dependency") {
      const [depender, dep] = leaf.terms as [Term, Term];
      if (depender.pkg === root) {
        direct.push(text(negate(dep)));
      } else {
        let facts = dependers.get(depender.pkg);
        if (!facts) dependers.set(depender.pkg, (facts = []));
        facts.push(`${termText(depender, name, { every: true, root })} depends on ${text(negate(dep))}`);
      }
    } else if (leaf.cause.kind === "noVersions") {
      const t = leaf.terms[0]!;
      missing.push(
        leaf.cause.total === 0
          ? `check the name and location of ${name(t.pkg)}: no versions of it were found`
          : `publish a version of ${name(t.pkg)} matching ${rangeText(t.set)}`,
      );
    }
  }
  const out: string[] = [];
  if (direct.length > 0) out.push(`relax ${name(root)}'s requirement on ${[...new Set(direct)].join(" or ")}`);
  out.push(...new Set(missing));
  if (dependers.size > 0) {
    const who = [...dependers.keys()].map(name);
    let facts = [...new Set([...dependers.values()].flat())];
    if (facts.length > 6) facts = [...facts.slice(0, 5), `and ${facts.length - 5} more`];
    const shown = who.length > 8 ? [...who.slice(0, 7), `${who.length - 7} others`] : who;
    const list = shown.length === 1 ? shown[0]! : `${shown.slice(0, -1).join(", ")} or ${shown[shown.length - 1]!}`;
    out.push(`update ${list} to versions whose requirements agree (${facts.join("; ")})`);
  }
  if (out.length === 0) return "";
  return `To fix this, change one of:\n${out.map((s) => `  - ${s}`).join("\n")}`;
}
