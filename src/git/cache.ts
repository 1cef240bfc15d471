/**
 * The local cache: one bare git repository under <cacheDir>/git shared by every set, so objects common to atoms
 * and versions are stored once. Resolution fetches manifest blobs into it by ref; `cpr fetch` fetches atom commits
 * (depth 1, no tags, no history). Materialised atoms live under <cacheDir>/atoms/<AtomId>/<version>-<rev>.
 */
export {};
