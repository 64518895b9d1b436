"""Decoding from a clause book (trainer.clausebook): every clause a row writes is a clause of the
training copy.

A trie over the token ids of the book's clauses. A row's state is its node: the clause written so
far since the last clause mark (at the root, PAUSED where that mark was a ，or ；, after which the
copy may not end). At each step the row may write only a token that continues some
clause of its book below that node, a clause mark where a whole clause ends there (only a comma
where the clause is one people continue: trainer.clausebook), and the end token at the root after
a 。！or ？. The model's distribution over those tokens is sampled as usual
(temperature, top-p, nudging, blocking all apply), so the model chooses the clauses and their
order.

A row beginning a sentence (at the root after a 。！？, or before any clause) writes a clause a writer
began a sentence with (trainer.clausebook), where one goes on; else any of its book's. So does a row
after a connective standing alone as a clause (而且，再加上，): what follows one opens a new statement.
A clause that only names a garment is written at the copy's start ("背带裙，") or, with a 这款 or the
like, at a sentence's ("这款卫衣，"): anywhere else it is a fragment.

A row's book is the clauses of its product's garment type whose facts its product states (the
facts of one of their writers: trainer.clausebook) and none of whose tokens its blockers would
block (the call's phrases and its request's own, read from the start of the clause), so blocking
never leaves it in a dead end.
Where the other rules still leave a row no token (the repeat ban on a clause it wrote before), it
writes freely until its next clause mark: its state is OFF (counted in `free_clauses`), and the
clause is drawn again (batching._Clauses) avoiding the paths where its draws were left none. Once make demo's
pinafore had written "背带裙的版型", the ban closed 背带裙的 to a row that began a sentence with 背带裙,
and every draw, the greedy last one too, went that way and wrote "。背带裙，" freely (63 of 192
candidates, 2026-12-05, night).

After a clause ended by a comma, the clauses that followed it in its writers' sentences (the book's
followers) get FOLLOW_BONUS on each of their tokens while the row is on their path: the row goes
on with its writer's sentence unless the model, its product or its bans want otherwise. Each clause
is a person's, the join between two is the model's, and the demo model's joins are where readers
found it incoherent ("经典的卡其色，让你的穿着舒适自在"); a person's sentence holds together.

A clause its book keeps subjects for (an effect: trainer.clausebook) is written after a comma only
where the row's previous clause names a value of one of those keys (NOTHING: names none), as its
writers' previous clauses did: "更显双腿修长" follows a leg's cut or length, never a flared cuff. A row
its book then leaves no clause goes on with any.

After a clause that opens with 不仅 (不但...) and does not go on itself (copygen.grammar.leaves_open), the
clause after the comma is one that answers it (还, 也, 更...: grammar.answers): of the 373 answered 不仅 of the
5,000 references, 354 are answered in their own clause or the next. "宽松的版型，不仅是打破了这款针织开衫的单调感，
选用百搭灰色调装饰" went to make demo's cardigan in 7 of 8 seeded short jobs (2026-12-06, evening). A row its
book then leaves no clause goes on with any.

Where a row wants phrases (the nudge toward its product's values: nudging.py), the tokens on a path
toward a clause of its book that writes a value it has not written yet get LEAD_BONUS (_Book.lead):
the nudge lifts a value's first token only where the book lets the row write it, so a value no
common clause begins with went unsaid (make demo's grey and off-white cardigan named its colour in
4 of 192 candidates; led, in 35).

numpy and torch are imported inside the methods (importing trainer.generation loads neither).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from copygen.grammar import answers, leaves_open
from trainer.clausebook import keys_named
from trainer.generation.sampling import NAMED_ONCE, _stutters

ROOT, OFF, PAUSED = 0, -1, -2  # PAUSED: at the root after a ，or ；, where the copy may not end
# Logits on the next token of a clause that followed the row's last one in its writer's sentence.
# Chosen on make demo's copy (2026-12-05, afternoon; docs/demo-model.md): at 4 its 60 rank-1 copies read blind had
# 43 incoherent joins against 50 and 33 wrong facts against 20 (a writer's next clause carries what
# its product had); at 2, 38 against 47 and 28 against 23, preferred 37 to 21. Against the morning's
# code: at 2, 39 against 56 and 24 against 14, preferred 37 to 22; at 1, 34 against 49 and 19 against
# 13, preferred 30 to 28. The first 100 validation products: R-L 24.82 with none, 24.65 at 2, 24.27 at 4.
FOLLOW_BONUS = 2.0
# Logits on the next token of a path toward a clause of the row's book that writes a value of its
# product it has not written yet. The nudge (nudging.py) lifts a value's first token only where the
# book lets the row write it, mid-clause, so a value no common clause begins with went unsaid: make
# demo's grey and off-white cardigan named its colour in 4 of 192 candidates, and said 宽松 3.8 times
# in each (2026-12-05, late night). Chosen on the first 100 validation products (make demo's settings,
# seed 0; docs/demo-model.md): R-L 24.74 with none, 25.02 at 1.5, 24.17 at 3 (coverage 81.6%, 93.8%, 96.4%): past
# 1.5 the copy crams values in.
LEAD_BONUS = 1.5
SENTENCE_MARKS = "。！？；"  # the clause marks never written after a continuing clause
# The connectives a writer sets alone before a new statement ("而且，裤脚的位置做了开叉", "此外，简约好搭的配色"):
# the clause after one is written as a sentence's first. The demo model went on from one as from any
# comma, with an effect that has nothing to qualify ("而且，衬托出女孩子柔美的气质", "再加上，彰显出女性的
# 优雅气质" in make demo's rank-1 copy, 2026-12-05, night).
CONNECTIVES = frozenset({"而且", "并且", "同时", "此外", "另外", "再加上", "加上", "但是", "不过", "首先", "其次",
                         "然后", "再者", "当然", "最后", "除此之外", "不仅如此", "与此同时"})
# A garment's name alone ("背带裙", "简约半身裙") is a fragment: "背带裙，休闲舒适，背带牛仔裙，可以随意系结", "中长裙，
# 百褶裙的剪裁设计" and "而且，连衣裙，增添了甜美浪漫的气息" in make demo's rank-1 copy (2026-12-05, night; 33 of a
# job's 480 candidates had one after their first clause). With a 这款 ("这款卫衣") it may open a sentence. It
# opened copies until 2026-12-06: "针织布上衣，宽松的版型，…" began the knit cardigan's rank-1 copy in eight
# seeded make demo jobs of eight, and two readers called it a fragment (41 of the 5,000 references open so).
MID, SENTENCE = 0, 1  # where a clause begins: in mid-sentence, at a sentence's start (the copy's first too)
_THIS = re.compile("^(?:这款|这件|这条|此款|这一款|这一件)")
_GARMENT_NAME = re.compile(r"(?:这款|这件|这条|此款|这一款|这一件|一款)?[\u4e00-\u9fffa-z]{0,4}?"
                           r"(?:裙|裤|衫|衣|裙子|裤子|外套|风衣|卫衣|毛衣|开衫|夹克|背心|马甲|t恤|西装|大衣|羽绒服)")
_NOT_A_NAME = re.compile("^(?:搭|配|下搭|作为|呼应|穿|拒绝|且|还是|为|是|它是|内搭)|撞衫|点亮")
END_MARKS = "。！？"  # the marks a copy may end after (not ；: "黑色的设计；" reads as a sentence cut short)


class _KnownClauses:
    """The trie of a clause book's token ids, and the share of it each blocker pair allows."""

    def __init__(self, sequences: list[list[int]], mark_ids, eos_id: int, types: list[frozenset[str]] | None = None,
                 facts: list[tuple[frozenset[str], ...]] | None = None, ends: list[bool] | None = None,
                 sentence_mark_ids=(), end_mark_ids=None, followers: list[tuple[int, ...]] | None = None,
                 starts: list[bool] | None = None, subjects: list[frozenset[str]] | None = None):
        """sequences: the clauses' token ids; types: the garment types each was written for (None:
        every clause is every type's); facts: each clause's writers' facts (trainer.clausebook;
        None, or () for a clause: any product may write it); ends: whether a sentence may end on
        each (None: on any), that is, be followed by one of the marks in sentence_mark_ids;
        end_mark_ids: the marks after which a copy may end (None: sentence_mark_ids); followers: for
        each clause, the clauses (indices into sequences) that followed it in a sentence (None: none);
        starts: whether a sentence may begin with each (None: with any); subjects: for each clause, the
        keys one of which the clause before it must name (NOTHING: names none; empty: any clause may)."""
        import numpy as np  # lazy: nothing heavy at import

        child: dict[tuple[int, int], int] = {}
        parent, token, paths = [ROOT], [0], []
        for ids in sequences:
            node, path = ROOT, []
            for t in ids:
                node = child.setdefault((node, t), len(parent))
                if node == len(parent):
                    parent.append(path[-1] if path else ROOT)
                    token.append(t)
                path.append(node)
            paths.append(path)
        self.child = child
        self.size = len(parent)
        order = np.lexsort((np.array(token), np.array(parent)))[1:]  # children grouped by parent; not the root
        self.kids = order  # node ids, grouped by parent
        self.kid_tokens = np.array(token, dtype=np.int64)[order]
        self.first = np.searchsorted(np.array(parent)[order], np.arange(self.size + 1))
        self.path_nodes = np.array([n for path in paths for n in path], dtype=np.int64)
        lengths = np.array([len(path) for path in paths], dtype=np.int64)  # int64 for an empty book too
        self.path_ends = np.cumsum(lengths)
        self.path_starts = self.path_ends - lengths  # clause i's nodes: path_nodes[start:end]
        self.node_token = np.array(token, dtype=np.int64)
        self.depth = np.zeros(self.size, dtype=np.int64)  # tokens from the root to each node
        self.clause_at = np.full(self.size, -1, dtype=np.int64)  # the clause ending at each node, -1 for none
        for i, path in enumerate(paths):
            self.depth[path] = np.arange(1, len(path) + 1)
            if path:
                self.clause_at[path[-1]] = i
        # Per node, the node below the last place on its path where a row had a choice (another token
        # or a clause's end): a row left no token at a node avoids this one, not just its own (a
        # clause's draws would otherwise back off one token per draw). Parents come before children.
        kid_count = np.diff(self.first)
        self.branch = np.arange(self.size, dtype=np.int64)
        for node in range(1, self.size):
            up = parent[node]
            if up != ROOT and kid_count[up] == 1 and self.clause_at[up] < 0:
                self.branch[node] = self.branch[up]
        self.followers = followers or [()] * len(sequences)
        self.names_product = np.zeros(len(sequences), dtype=bool)  # holds a phrase of sampling.NAMED_ONCE (from_book)
        self.connective = np.zeros(len(sequences), dtype=bool)  # is one of CONNECTIVES (from_book)
        self.garment_name = np.zeros(len(sequences), dtype=bool)  # names a garment and nothing more (from_book)
        self.bare_name = np.zeros(len(sequences), dtype=bool)  # ... with no 这款 before it
        self.leaves_open = np.zeros(len(sequences), dtype=bool)  # opens with 不仅 and does not go on (from_book)
        self.answers = np.ones(len(sequences), dtype=bool)  # goes on from a 不仅 (from_book)
        width = max((len(ids) for ids in sequences), default=0)
        self.ids = np.full((len(sequences), width), -1, dtype=np.int64)  # the clauses, padded with -1
        for i, ids in enumerate(sequences):
            self.ids[i, :len(ids)] = ids
        self.marks = np.asarray(sorted(mark_ids), dtype=np.int64)
        self._marks = set(self.marks.tolist())
        self.stops = self.marks[np.isin(self.marks, list(sentence_mark_ids))]  # after a clause that may end a sentence
        self.pauses = self.marks[~np.isin(self.marks, list(sentence_mark_ids))]  # after any clause
        self.ends = np.ones(len(sequences), dtype=bool) if ends is None else np.asarray(ends, dtype=bool)
        self.starts = np.ones(len(sequences), dtype=bool) if starts is None else np.asarray(starts, dtype=bool)
        ends_copy = self.stops if end_mark_ids is None else self.marks[np.isin(self.marks, list(end_mark_ids))]
        # the marks after which a row is PAUSED (no end token); with no marks to end on, none
        self._no_end_after = set(self.marks.tolist()) - set(ends_copy.tolist()) if len(ends_copy) else set()
        self.eos_id = eos_id
        self.types = types
        self._of_type: dict[str, object] = {}  # of_type's arrays, one per garment type asked for
        self._texts: list[str] | None = None  # texts(), made on first use
        # The writers' facts as arrays: fact_names[fact_ids[a:b]] is one set of facts, at its set's
        # place; set_of[i] is the set, clause_of[i] the clause, of the i-th (clause, set) pair.
        facts = facts or [()] * len(sequences)
        sets = list(dict.fromkeys(s for alternatives in facts for s in alternatives))
        self.fact_names = sorted({f for s in sets for f in s})
        index = {f: i for i, f in enumerate(self.fact_names)}
        self.fact_ids = np.array([index[f] for s in sets for f in sorted(s)], dtype=np.int64)
        self.set_starts = np.cumsum([0] + [len(s) for s in sets])[:-1].astype(np.int64)
        set_index = {s: i for i, s in enumerate(sets)}
        self.set_of = np.array([set_index[s] for alternatives in facts for s in alternatives], dtype=np.int64)
        self.clause_of = np.array([i for i, alternatives in enumerate(facts) for _ in alternatives], dtype=np.int64)
        self.free = np.array([not alternatives for alternatives in facts], dtype=bool)
        # What each clause names, as the keys of its facts (NOTHING for none), numbered: a row's previous
        # clause's keys are what a clause with subjects must follow (after()).
        named = [keys_named(f for s in alternatives for f in s) for alternatives in facts]
        self._named_keys = list(dict.fromkeys(named))
        number = {keys: i for i, keys in enumerate(self._named_keys)}
        self.named_class = np.array([number[keys] for keys in named], dtype=np.int64)
        self.subjects = subjects or [frozenset()] * len(sequences)
        self.has_subjects = np.array([bool(keys) for keys in self.subjects], dtype=bool)
        self._fits: dict[int, object] = {}  # fits()'s arrays, one per class asked for
        self._ends_fit: dict[int, object] = {}  # _ends_fitting()'s, likewise
        self._ends_answer = None  # _ends_answering()'s array, made on first use
        self.has_path = lengths > 0
        self.end_node = self.path_nodes[np.maximum(self.path_ends - 1, 0)]  # where each clause ends (with a path)
        self.path_clause = np.repeat(np.arange(len(sequences)), lengths)  # the clause of each of path_nodes

    def texts(self) -> list[str]:
        """Each clause's token ids as a string of one character per id, for finding phrases in it."""
        if self._texts is None:
            self._texts = ["".join(map(chr, (t for t in row if t >= 0))) for row in self.ids.tolist()]
        return self._texts

    def of_type(self, kind: str):
        """Per clause: whether a product of this garment type (trainer.ngram.key_of) may write it."""
        import numpy as np  # lazy: nothing heavy at import

        if self.types is None or not kind:  # no types kept, or a product of no type: every clause
            return np.ones(len(self.ids), dtype=bool)
        if kind not in self._of_type:
            self._of_type[kind] = np.array([kind in t for t in self.types], dtype=bool)
        return self._of_type[kind]

    def of_facts(self, met):
        """Per clause: whether a product meeting these facts (met[i]: fact_names[i]) states the facts
        of one of its writers; a clause with none, any product."""
        import numpy as np  # lazy: nothing heavy at import

        if not len(self.set_of):
            return self.free.copy()
        unmet = np.add.reduceat((~np.asarray(met, dtype=bool))[self.fact_ids].astype(np.int64), self.set_starts)
        met_sets = np.bincount(self.clause_of, weights=(unmet[self.set_of] == 0), minlength=len(self.free))
        return self.free | (met_sets > 0)

    @classmethod
    def from_book(cls, book, tokenizer, mark_ids, eos_id: int) -> _KnownClauses:
        unk = tokenizer.unk_token_id
        encoded = tokenizer(book.clauses, add_special_tokens=False)["input_ids"] if len(book) else []
        # not a clause the stutter ban would stop in (the book's "这款休闲裤休闲感十足" left make demo's harem
        # trousers at 这款休闲裤休, to write on freely: "这款休闲裤休哈伦裤…" in all 24 candidates; 11 clauses)
        kept = [i for i, ids in enumerate(encoded) if ids and unk not in ids and not _stutters(ids)]
        sentence_marks = set(tokenizer.convert_tokens_to_ids(list(SENTENCE_MARKS))) - {unk, None}
        end_marks = set(tokenizer.convert_tokens_to_ids(list(END_MARKS))) - {unk, None}
        place = {i: n for n, i in enumerate(kept)}
        followers = [tuple(place[f] for f in book.followers[i] if f in place) for i in kept]
        trie = cls([encoded[i] for i in kept], mark_ids, eos_id, [book.types[i] for i in kept],
                   [book.facts[i] for i in kept], [book.ends[i] for i in kept], sentence_marks, end_marks, followers,
                   [book.starts[i] for i in kept], [book.subjects[i] for i in kept])
        trie.names_product[:] = [any(p in book.clauses[i] for p in NAMED_ONCE) for i in kept]
        trie.connective[:] = [book.clauses[i] in CONNECTIVES for i in kept]
        trie.garment_name[:] = [_names_a_garment_alone(book.clauses[i]) for i in kept]
        trie.bare_name[:] = trie.garment_name & [not _THIS.match(book.clauses[i]) for i in kept]
        trie.leaves_open[:] = [leaves_open(book.clauses[i]) for i in kept]
        trie.answers[:] = [answers(book.clauses[i]) for i in kept]
        return trie

    # -- which clauses a row may write ---------------------------------------------------------

    def passing(self, blocker):
        """Per clause: whether blocker lets every one of its tokens through, read from state 0."""
        import numpy as np  # lazy: nothing heavy at import

        ok = ~np.isin(self.ids, blocker.everywhere).any(1)
        if not blocker.active:
            return ok
        states = np.zeros(len(self.ids), dtype=np.int64)
        for j in range(self.ids.shape[1]):
            t = self.ids[:, j]
            present = t >= 0
            live = np.flatnonzero(present & (blocker.count[states] > 0) & ok)  # rows a phrase has begun in
            ok[live] &= ~(blocker.table[states[live]] == t[live, None]).any(1)
            states = np.where(present, blocker.advance(states, np.where(present, t, 0)), states)
        return ok

    def allowed(self, passing: list) -> tuple:
        """(node_ok, end_ok, stop_ok): the nodes on the path of some clause every array of passing
        (one per blocker: passing()) lets through, the nodes where such a clause ends, and those
        where one ends that a sentence may end on."""
        import numpy as np  # lazy: nothing heavy at import

        return self._allowed_of(np.logical_and.reduce([np.ones(len(self.ids), dtype=bool), *passing]))

    def after(self, allowed: tuple, clause: int) -> tuple:
        """allowed (a triple of allowed()) less the clauses with subjects that may not follow this
        clause: none of their subjects is a key it names (NOTHING where it names none); and after a
        clause that leaves a 不仅 open, less those that do not answer it. Only its nodes are new: the
        triple's end_ok and stop_ok are kept, with the nodes where a clause that fits ends (one array
        per class of what the clause names and whether it leaves a 不仅 open, shared by every set)."""
        named = int(self.named_class[clause])
        end_ok = allowed[1]  # where an allowed clause ends: one node per clause
        fit, ends = self.fits(named), self._ends_fitting(named)
        if self.leaves_open[clause]:
            fit, ends = fit & self.answers, ends & self._ends_answering()
        return self._nodes_of(end_ok[self.end_node] & fit), end_ok, allowed[2], ends

    def fits(self, named: int):
        """Per clause: whether it may follow a clause naming these keys (a class of named_class)."""
        import numpy as np  # lazy: nothing heavy at import

        if named not in self._fits:
            keys = self._named_keys[named]
            self._fits[named] = ~self.has_subjects | np.array([bool(s & keys) for s in self.subjects], dtype=bool)
        return self._fits[named]

    def _ends_fitting(self, named: int):
        """Per node: False where a clause that may not follow a clause naming these keys ends."""
        import numpy as np  # lazy: nothing heavy at import

        if named not in self._ends_fit:
            fitting = np.ones(self.size, dtype=bool)
            fitting[self.end_node[~self.fits(named) & self.has_path]] = False
            self._ends_fit[named] = fitting
        return self._ends_fit[named]

    def _ends_answering(self):
        """Per node: False where a clause that does not answer a 不仅 ends."""
        import numpy as np  # lazy: nothing heavy at import

        if self._ends_answer is None:
            self._ends_answer = np.ones(self.size, dtype=bool)
            self._ends_answer[self.end_node[~self.answers & self.has_path]] = False
        return self._ends_answer

    def _nodes_of(self, ok):
        """The nodes on the path of some clause where ok holds, and the root."""
        import numpy as np  # lazy: nothing heavy at import

        node_ok = np.zeros(self.size, dtype=bool)
        node_ok[ROOT] = True
        node_ok[self.path_nodes[ok[self.path_clause]]] = True
        return node_ok

    def _allowed_of(self, ok) -> tuple:
        """(node_ok, end_ok, stop_ok) of the clauses where ok holds (allowed())."""
        import numpy as np  # lazy: nothing heavy at import

        node_ok = self._nodes_of(ok)
        end_ok = np.zeros(self.size, dtype=bool)
        end_ok[self.end_node[ok & self.has_path]] = True
        stop_ok = np.zeros(self.size, dtype=bool)
        stop_ok[self.end_node[ok & self.has_path & self.ends]] = True
        return node_ok, end_ok, stop_ok

    # -- the decode loop -----------------------------------------------------------------------

    def start(self, ids: list[int]) -> int:
        """The state after a row's forced opening (the copy before its first generated token)."""
        return self.opening(ids)[0]

    def opening(self, ids: list[int]) -> tuple[int, int, int]:
        """A row's (state, clause it last ended with a comma as `ended` reads it or -1, where the clause
        it is writing begins: SENTENCE before any mark, else `begins`) after its forced opening."""
        import numpy as np  # lazy: nothing heavy at import

        state, after, where = ROOT, -1, SENTENCE
        for t in ids:
            after = int(self.ended(np.array([state]), np.array([t]), np.array([after]))[0])
            state = self.step(state, t)
            if t in self._marks:
                where = int(self.begins(np.array([state]), np.array([after]))[0])
        return state, after, where

    def begins(self, states, after):
        """Per row just past a clause mark: where its next clause begins, SENTENCE after a 。！？ (not
        a ，or ；) or after a connective alone (CONNECTIVES), else MID."""
        import numpy as np  # lazy: nothing heavy at import

        opens = states == ROOT
        if len(self.connective):
            opens |= (after >= 0) & self.connective[np.maximum(after, 0)]
        return np.where(opens, SENTENCE, MID).astype(np.int8)

    def step(self, state: int, t: int) -> int:
        if t in self._marks:
            return PAUSED if t in self._no_end_after else ROOT
        if state == OFF:
            return OFF
        return self.child.get((ROOT if state == PAUSED else state, t), OFF)

    def following(self, state: int, after: int) -> list[int]:
        """The tokens that go on, from this state, with a clause that followed clause `after`."""
        node = max(state, ROOT)
        depth = int(self.depth[node]) + 1  # of the next token's node
        tokens = []
        for f in self.followers[after]:
            start = self.path_starts[f]
            if self.path_ends[f] - start < depth or (depth > 1 and self.path_nodes[start + depth - 2] != node):
                continue
            tokens.append(int(self.node_token[self.path_nodes[start + depth - 1]]))
        return tokens

    def ended(self, states, tokens, after):
        """The clause each row ended with a comma (a mark that ends no sentence) on writing its token,
        where it did: the clause its followers follow. Other tokens keep `after` as it was, a mark
        that ends a sentence (or ；) clears it."""
        import numpy as np  # lazy: nothing heavy at import

        pause = np.isin(tokens, self.pauses)
        clause = np.where(states >= ROOT, self.clause_at[np.maximum(states, ROOT)], -1)
        return np.where(pause, clause, np.where(np.isin(tokens, self.marks), -1, after))

    def advance(self, states, tokens):
        import numpy as np  # lazy: nothing heavy at import

        return np.array([self.step(int(s), int(t)) for s, t in zip(states, tokens)], dtype=np.int64)

    def mask(self, scores, states, books, allowed: list, live, dead=None):
        """scores with -inf on every token the live rows' books do not continue, except in rows
        it would leave no token at all (returned: those rows, to write freely until their next
        mark). books[slot] indexes allowed: (node_ok, end_ok, stop_ok) of the slot's row, and for a set
        of after() the nodes where a clause that fits ends; dead[slot],
        the nodes the row does not enter (-1 where none)."""
        import numpy as np  # lazy: nothing heavy at import
        import torch

        rows = np.flatnonzero(live & (states != OFF))
        if not len(rows):
            return scores, rows
        at, cols = [], []
        for i, slot in enumerate(rows):
            node = max(int(states[slot]), ROOT)  # PAUSED: the root
            node_ok, end_ok, stop_ok, *fits = allowed[books[slot]]  # a set of after() holds the clauses' fits too
            kids = self.kids[self.first[node]:self.first[node + 1]]
            ok = node_ok[kids] if dead is None or dead[slot].max() < 0 else node_ok[kids] & ~np.isin(kids, dead[slot])
            tokens = self.kid_tokens[self.first[node]:self.first[node + 1]][ok]
            if end_ok[node] and (not fits or fits[0][node]):
                tokens = np.concatenate([tokens, self.pauses, self.stops if stop_ok[node] else self.stops[:0]])
            if states[slot] == ROOT:  # after a mark that ends a sentence, or before any
                tokens = np.append(tokens, self.eos_id)
            at.append(np.full(len(tokens), i))
            cols.append(tokens)
        keep = torch.zeros((len(rows), scores.shape[1]), dtype=torch.bool, device=scores.device)
        keep[torch.from_numpy(np.concatenate(at)).to(scores.device),
             torch.from_numpy(np.concatenate(cols)).to(scores.device)] = True
        index = torch.from_numpy(rows).to(scores.device)
        unmasked = scores[index]
        masked = unmasked.masked_fill(~keep, float("-inf"))
        stuck = ~torch.isfinite(masked).any(-1)
        masked[stuck] = unmasked[stuck]
        scores = scores.clone()
        scores[index] = masked
        return scores, rows[stuck.cpu().numpy()]


def _names_a_garment_alone(clause: str) -> bool:
    return len(clause) <= 8 and bool(_GARMENT_NAME.fullmatch(clause)) and not _NOT_A_NAME.search(clause)


@dataclass
class _Book:
    """One call's clause book: the trie, and the (node_ok, end_ok) of each set of rows with the same
    phrases of their own and source (_Row.book)."""

    trie: _KnownClauses
    allowed: list
    # the same sets less the clauses that point at the product (这款...), for rows that have already
    # named it: the named-once ban would stop such a row inside one ("这是一" with 款 barred) and
    # leave it to write freely ("这是一件黑色的西装面料" for make demo's suit trousers, three jobs in three)
    unnamed: list | None = None
    # allowed and unnamed less the clauses no writer began a sentence with, for rows beginning one:
    # "这款宽松的版型，", "休闲的风范。" and "而且还有些可爱的气息在；" opened sentences of make demo's copy,
    # each one writer's clause in mid-sentence (2026-12-05, evening). Two blocks as long as allowed: at
    # a sentence's start (the copy's too), the same unnamed.
    starting: list | None = None
    free_clauses: int = 0  # clauses a row wrote freely, where its book left it no token
    # per (allowed set, nudger): the groups of wanted phrases some allowed clause below each node writes
    _reach: dict = field(default_factory=dict, init=False, repr=False)
    # allowed and unnamed sets less the clauses that may not follow a row's previous clause (_KnownClauses.after),
    # made as rows need them, and the place of each in it by (set, the previous clause's named class, whether it
    # leaves a 不仅 open)
    _joined: list = field(default_factory=list, init=False, repr=False)
    _joined_at: dict = field(default_factory=dict, init=False, repr=False)

    def lead(self, scores, states, books, wanted, written, nudgers, live):
        """scores with LEAD_BONUS on the tokens that go on toward a clause of each live row's book
        writing a phrase of a wanted group (nudging._Nudger.groups) the row has not written."""
        import numpy as np  # lazy: nothing heavy at import
        import torch

        rows, cols = [], []
        trie = self.trie
        for slot in np.flatnonzero(live & (states != OFF) & (wanted >= 0)):
            reach = self._reach_of(int(books[slot]), int(wanted[slot]), nudgers)
            if reach is None:
                continue
            nodes, bits = reach
            node = max(int(states[slot]), ROOT)
            lo, hi = trie.first[node], trie.first[node + 1]
            kids = trie.kids[lo:hi]
            at = np.minimum(np.searchsorted(nodes, kids), len(nodes) - 1)
            toward = (nodes[at] == kids) & ((bits[at] & ~written[slot]) != 0)
            tokens = trie.kid_tokens[lo:hi][toward]
            rows += [slot] * len(tokens)
            cols += tokens.tolist()
        if rows:
            device = scores.device
            scores[torch.tensor(rows, device=device), torch.tensor(cols, device=device)] += LEAD_BONUS
        return scores

    def _reach_of(self, book: int, nudger: int, nudgers):
        """(nodes, bits): the nodes on a path to an allowed clause that writes a phrase of one of the
        nudger's groups, sorted, and the bits of the groups reached below each; None where no clause
        does. Kept sparse: a chunk of many products holds one per product (the demo trie has 153,118
        nodes)."""
        import numpy as np  # lazy: nothing heavy at import

        key = (book, nudger)
        if key not in self._reach:
            trie = self.trie
            _, end_ok, _ = self.allowed[book]
            kept = np.flatnonzero(end_ok[trie.end_node] & trie.has_path)
            phrases = [("".join(map(chr, p)), 1 << g) for g, group in enumerate(nudgers.nudgers[nudger].groups)
                       for p in group if p]
            texts = trie.texts()
            nodes, bits = [], []
            for i in kept:
                found = 0
                for phrase, bit in phrases:
                    if phrase in texts[i]:
                        found |= bit
                if found:
                    path = trie.path_nodes[trie.path_starts[i]:trie.path_ends[i]]
                    nodes.append(path)
                    bits.append(np.full(len(path), found, dtype=np.int64))
            reach = None
            if nodes:
                nodes, bits = np.concatenate(nodes), np.concatenate(bits)
                order = np.argsort(nodes, kind="stable")
                nodes, bits = nodes[order], bits[order]
                starts = np.flatnonzero(np.r_[True, nodes[1:] != nodes[:-1]])
                reach = (nodes[starts], np.bitwise_or.reduceat(bits, starts))
            self._reach[key] = reach
        return self._reach[key]

    def follow(self, scores, states, after, live):
        """scores with FOLLOW_BONUS on the tokens that go on with a follower of each live row's last
        clause (known.py), where it has one."""
        import numpy as np  # lazy: nothing heavy at import
        import torch

        rows, cols = [], []
        for slot in np.flatnonzero(live & (after >= 0) & (states != OFF)):
            tokens = self.trie.following(int(states[slot]), int(after[slot]))
            rows += [slot] * len(tokens)
            cols += tokens
        if rows:
            device = scores.device
            scores[torch.tensor(rows, device=device), torch.tensor(cols, device=device)] += FOLLOW_BONUS
        return scores

    def marks_of(self, scores):
        """A copy of scores' clause-mark columns (what mask() may lift the repeat ban to)."""
        import torch

        return scores[:, torch.from_numpy(self.trie.marks).to(scores.device)].clone()

    def mask(self, scores, states, books, live, unbanned_marks=None, named=None, starting=None, dead=None,
             after=None):
        """_KnownClauses.mask over this call's allowed sets; the rows it leaves free are set OFF
        in states and counted. unbanned_marks: marks_of() the scores before the repeat ban, which
        a row the ban would leave no clause may write: a mark is no content, and people end clauses
        on the same 3 characters often ("条纹的设计，" after "polo领的设计，"; make demo's row, barred
        from the ，, wrote the free "采用了条纹的设计版型设计"). The ban keeps holding inside a clause:
        lifted there, it let rows write "柔软舒适，柔软舒适" rather than a free clause. named: per slot,
        whether its row had named the product when its clause began (its set is then from unnamed);
        starting: per slot, where its clause began (MID or SENTENCE: its set is then from starting);
        dead: per slot, the nodes its row does not enter (-1: none); after: per slot, the clause its
        row ended with a comma before this one (-1: none), which a clause with subjects must fit."""
        import numpy as np  # lazy: nothing heavy at import
        import torch

        sets = self.allowed
        if named is not None and self.unnamed is not None:
            sets = self.allowed + self.unnamed
            books = books + len(self.allowed) * named.astype(books.dtype)
        chosen, pool = books, sets
        narrowed = np.zeros_like(live)  # rows whose set is narrower than their book's (SENTENCE, or after a clause)
        if starting is not None and self.starting is not None:
            # starting holds the allowed sets' block, then the unnamed sets' block
            sentence = self.starting if len(sets) > len(self.allowed) else self.starting[:len(self.allowed)]
            chosen, pool = books + len(sets) * starting.astype(books.dtype), sets + sentence
            narrowed |= starting != MID
        if after is not None and (self.trie.has_subjects.any() or self.trie.leaves_open.any()):
            rows = np.flatnonzero(live & (states != OFF) & (after >= 0) & ~narrowed)
            if len(rows):
                chosen = chosen.copy()
                places = self._joined_index(books[rows], after[rows], sets)
                chosen[rows] = len(pool) + np.array(places, dtype=chosen.dtype)
                pool = pool + self._joined
                narrowed[rows] = True
        masked, stuck = self._masked(scores, states, chosen, pool, live, unbanned_marks, dead)
        # a row its narrower set leaves no token goes on with any clause of its book's
        retry = np.zeros_like(live)
        retry[stuck] = narrowed[stuck]
        if retry.any():
            again, still = self._masked(scores, states, books, sets, retry, unbanned_marks, dead)
            rescued = np.setdiff1d(np.flatnonzero(retry), still)
            index = torch.from_numpy(rescued).to(scores.device)
            masked[index] = again[index]
            stuck = np.setdiff1d(stuck, rescued)
        states[stuck] = OFF
        self.free_clauses += len(stuck)
        return masked

    def _joined_index(self, books, after, sets) -> list[int]:
        """For each row: the place in _joined of its set (books: index into sets) less the clauses
        that may not follow its previous clause (after), made where no row has needed it yet."""
        places = []
        for book, clause in zip(books.tolist(), after.tolist()):
            key = (book, int(self.trie.named_class[clause]), bool(self.trie.leaves_open[clause]))
            if key not in self._joined_at:
                self._joined_at[key] = len(self._joined)
                self._joined.append(self.trie.after(sets[book], clause))
            places.append(self._joined_at[key])
        return places

    def _masked(self, scores, states, books, sets, live, unbanned_marks, dead=None):
        """(scores masked by each live row's set, the rows left no token), a row the repeat ban
        leaves none trying again with the marks unbanned (mask())."""
        import numpy as np  # lazy: nothing heavy at import
        import torch

        scores, stuck = self.trie.mask(scores, states, books, sets, live, dead)
        if len(stuck) and unbanned_marks is not None:
            retry = np.zeros_like(live)
            retry[stuck] = True
            index = torch.from_numpy(stuck).to(scores.device)
            marks = torch.from_numpy(self.trie.marks).to(scores.device)
            lifted = scores.clone()
            lifted[index[:, None], marks] = unbanned_marks[index]
            again, still = self.trie.mask(lifted, states, books, sets, retry, dead)
            rescued = np.setdiff1d(stuck, still)
            if len(rescued):
                index = torch.from_numpy(rescued).to(scores.device)
                scores[index] = again[index]
            stuck = still
        return scores, stuck
