/** PubGrub incompatibilities: sets of terms that must not all hold, with the cause that proves it. */
import { intersectTerms, type Term } from "./term.js";

export type Cause =
  /** The root must be selected at its version. */
  | { readonly kind: "root" }
  /** A range of the first term's versions depends on the negation of the second term. */
  | { readonly kind: "dependency" }
  /** No known version of the package lies in the term's set (`total` = how many versions the package has at all). */
  | { readonly kind: "noVersions"; readonly total: number }
  /** Derived by conflict resolution from two incompatibilities. */
  | { readonly kind: "derived"; readonly left: Incompatibility; readonly right: Incompatibility };

let nextId = 0;

export class Incompatibility {
  readonly terms: readonly Term[];
  readonly id = nextId++;

  /**
   * Terms of one package are intersected. In a derived incompatibility with more than one term, a positive root
   * term is dropped (the root is always selected, so it adds nothing), as pub does; messages read better for it.
   */
  constructor(
    terms: readonly Term[],
    readonly cause: Cause,
    root?: string,
  ) {
    const byPkg = new Map<string, Term>();
    for (const t of terms) {
      const prev = byPkg.get(t.pkg);
      byPkg.set(t.pkg, prev ? intersectTerms(prev, t) : t);
    }
    let list = [...byPkg.values()];
    if (cause.kind === "derived" && root !== undefined && list.length > 1) {
      list = list.filter((t) => !(t.pkg === root && t.positive));
    }
    this.terms = list;
  }

  get derived(): boolean {
    return this.cause.kind === "derived";
  }

  term(pkg: string): Term | undefined {
    return this.terms.find((t) => t.pkg === pkg);
  }
}
