------------------------------ MODULE Cluster ------------------------------
(***************************************************************************)
(* ron-ledger's replicated log as openraft 0.9 runs it, one level below    *)
(* Pipeline.tla: group commit, linked chains, log compaction by snapshot   *)
(* with install on a lagging node, and membership change by joint          *)
(* consensus (including removing the leader).                              *)
(*                                                                         *)
(* - An entry is a blank (appended by every new leader), a ledger batch    *)
(*   (a sequence of requests the sequencer coalesced: group commit), or a  *)
(*   membership config (one voter set, or two while joint).                *)
(* - A request is a sequence of events, either independent or one linked   *)
(*   chain; apply is deterministic: an event whose id is known is          *)
(*   `exists`, one whose debit account lacks funds fails, else it moves 1  *)
(*   unit from account a to account b. A chain commits only if all its     *)
(*   events are ok (or all exist); otherwise it is rolled back whole.      *)
(* - Every node builds snapshots of its applied state and purges its log   *)
(*   up to Keep entries behind the snapshot; a leader that has purged what *)
(*   a follower lacks sends its current snapshot, which the follower       *)
(*   installs (state and log prefix replaced) unless it is not newer than  *)
(*   the follower's commit index.                                          *)
(* - A membership entry takes effect as soon as it is appended; quorums of *)
(*   a joint config are majorities of both sets; a change is proposed only *)
(*   once the effective config is committed; a leader not in the config   *)
(*   steps down once that config is committed.                             *)
(*                                                                         *)
(* `committed` is a ghost: the longest committed prefix, against which     *)
(* every node's log, applied state and snapshot are checked.               *)
(*                                                                         *)
(* Simplifications (tla/README.md lists them all): a node applies what it  *)
(* learns is committed in the same step (its commit and applied indexes    *)
(* coincide); AppendEntries ships the leader's whole suffix; no crashes,   *)
(* timestamps or client acknowledgements (Pipeline.tla has those); votes   *)
(* are collected in one step.                                              *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets, TLC

CONSTANTS Nodes,            \* e.g. {n1, n2, n3}
          InitVoters,       \* the initial voters; Nodes \ InitVoters start as learners
          Goals,            \* voter sets an operator may ask for (change_membership, retain=false)
          Req,              \* request id -> [events |-> <<...>>, linked |-> BOOLEAN]
          Funds,            \* initial balance of account a (b starts at 0)
          MaxTerm,          \* bound on elections
          MaxIndex,         \* bound on log indexes
          MaxBatch,         \* most requests the sequencer puts in one entry
          Keep,             \* max_in_snapshot_log_to_keep: entries kept behind a snapshot
          SkipIdempotency,  \* planted bug: apply does not look ids up
          NoRollback,       \* planted bug: a linked chain's events apply independently
          TornSnapshot,     \* planted bug: snapshot labelled with the index before its state
          StaleInstall,     \* planted bug: a follower installs a snapshot older than its state
          SkipJoint         \* planted bug: a membership change switches configs in one step

VARIABLES term,       \* term[n]: current term (saved with the vote, synced)
          role,       \* "leader" or "follower" (volatile)
          log,        \* log[n]: the entries after base[n].idx (synced on append)
          base,       \* base[n]: the last purged entry: [idx, term, cfg, nodes] (synced)
          applied,    \* applied[n]: last applied index = the commit index n knows
          st,         \* st[n]: the ledger state as of applied[n] (synced with it)
          snap,       \* snap[n]: n's current snapshot [idx, term, cfg, nodes, st]
          committed,  \* ghost: the committed prefix of the log
          committedBy \* ghost: committedBy[i] = term of the leader that first committed i

vars == <<term, role, log, base, applied, st, snap, committed, committedBy>>

-----------------------------------------------------------------------------
\* Helpers

Range(s) == {s[i] : i \in DOMAIN s}
SetMax(S) == CHOOSE x \in S : \A y \in S : y <= x
Max(a, b) == IF a > b THEN a ELSE b

Requests == DOMAIN Req
Events == UNION {Range(Req[r].events) : r \in Requests}
Linked == {r \in Requests : Req[r].linked}

\* The sequencer's group commit: up to MaxBatch distinct requests in one entry, in any order.
Batches == UNION {{b \in [1..k -> Requests] : \A i, j \in 1..k : i # j => b[i] # b[j]} :
                  k \in 1..MaxBatch}

InitCfg == <<InitVoters>>
Voters(c) == UNION Range(c)
\* A joint config needs a majority of each of its sets.
IsQuorum(Q, c) == \A k \in DOMAIN c : Cardinality(Q \cap c[k]) * 2 > Cardinality(c[k])

Blank(t) == [term |-> t, kind |-> "blank", batch |-> <<>>, cfg |-> <<>>, nodes |-> {}]
Data(t, b) == [term |-> t, kind |-> "data", batch |-> b, cfg |-> <<>>, nodes |-> {}]
Config(t, c, ns) == [term |-> t, kind |-> "config", batch |-> <<>>, cfg |-> c, nodes |-> ns]

\* The log of n holds indexes base[n].idx + 1 .. LastIndex(n).
LastIndex(n) == base[n].idx + Len(log[n])
Entry(n, i) == log[n][i - base[n].idx]
TermAt(n, i) == IF i = base[n].idx THEN base[n].term ELSE Entry(n, i).term
LastTerm(n) == TermAt(n, LastIndex(n))
\* Raft's election restriction: a's log is at least as up to date as b's.
UpToDate(a, b) == \/ LastTerm(a) > LastTerm(b)
                  \/ LastTerm(a) = LastTerm(b) /\ LastIndex(a) >= LastIndex(b)

\* The membership in force at index i on n (i >= base[n].idx): the last config entry at or
\* below i, else the one recorded with the base. idx is where it was appended (for the base's,
\* an index at or below the base: committed).
CfgAt(n, i) ==
    LET P == {p \in 1..(i - base[n].idx) : log[n][p].kind = "config"}
    IN IF P = {} THEN [cfg |-> base[n].cfg, nodes |-> base[n].nodes, idx |-> base[n].idx]
       ELSE LET p == SetMax(P)
            IN [cfg |-> log[n][p].cfg, nodes |-> log[n][p].nodes, idx |-> base[n].idx + p]
\* openraft's effective membership: the last one in the log, committed or not.
Eff(n) == CfgAt(n, LastIndex(n))

-----------------------------------------------------------------------------
\* The ledger: accounts a and b; every event moves 1 unit from a to b.

InitState == [moved |-> [e \in Events |-> 0], a |-> Funds, b |-> 0, leaves |-> 0]

Result(s, e) == IF ~SkipIdempotency /\ s.moved[e] > 0 THEN "exists"
                ELSE IF s.a > 0 THEN "ok" ELSE "failed"

\* Every event takes a Merkle leaf (its result), whatever the result.
Step(s, e) ==
    LET ok == Result(s, e) = "ok"
    IN [moved |-> IF ok THEN [s.moved EXCEPT ![e] = @ + 1] ELSE s.moved,
        a |-> IF ok THEN s.a - 1 ELSE s.a,
        b |-> IF ok THEN s.b + 1 ELSE s.b,
        leaves |-> s.leaves + 1]

RECURSIVE Steps(_, _)
Steps(s, es) == IF es = <<>> THEN s ELSE Steps(Step(s, Head(es)), Tail(es))

RECURSIVE Results(_, _)
Results(s, es) == IF es = <<>> THEN <<>>
                  ELSE <<Result(s, Head(es))>> \o Results(Step(s, Head(es)), Tail(es))

\* A linked chain commits if all its events are ok (or all exist: a retried chain); otherwise
\* its writes are rolled back and only its leaves remain.
ApplyRequest(s, r) ==
    LET es == Req[r].events
        rs == Range(Results(s, es))
    IN IF ~Req[r].linked \/ NoRollback \/ rs = {"ok"} \/ rs = {"exists"} THEN Steps(s, es)
       ELSE [s EXCEPT !.leaves = @ + Len(es)]

RECURSIVE ApplyBatch(_, _)
ApplyBatch(s, b) == IF b = <<>> THEN s ELSE ApplyBatch(ApplyRequest(s, Head(b)), Tail(b))

ApplyEntry(s, ent) == IF ent.kind = "data" THEN ApplyBatch(s, ent.batch) ELSE s

RECURSIVE Replay(_, _)
Replay(s, l) == IF l = <<>> THEN s ELSE Replay(ApplyEntry(s, Head(l)), Tail(l))

-----------------------------------------------------------------------------

Init == /\ term = [n \in Nodes |-> 0]
        /\ role = [n \in Nodes |-> "follower"]
        /\ log = [n \in Nodes |-> <<>>]
        /\ base = [n \in Nodes |-> [idx |-> 0, term |-> 0, cfg |-> InitCfg, nodes |-> Nodes]]
        /\ applied = [n \in Nodes |-> 0]
        /\ st = [n \in Nodes |-> InitState]
        /\ snap = [n \in Nodes |-> [idx |-> 0, term |-> 0, cfg |-> InitCfg, nodes |-> Nodes,
                                    st |-> InitState]]
        /\ committed = <<>>
        /\ committedBy = <<>>

\* n applies its entries up to index k (all committed): one atomic write per entry.
ApplyUpTo(n, k) == Replay(st[n], SubSeq(log[n], applied[n] - base[n].idx + 1, k - base[n].idx))

\* An election: a follower that is a voter of its own effective config c gathers votes from a
\* quorum of c (of both sets while joint) in a new term, then appends a blank entry of its term.
BecomeLeader(n, t, Q, c) ==
    /\ n \in Q /\ IsQuorum(Q, c)
    /\ \A m \in Q : term[m] < t /\ UpToDate(n, m)
    /\ term' = [m \in Nodes |-> IF m \in Q THEN t ELSE term[m]]
    /\ role' = [m \in Nodes |-> IF m = n THEN "leader"
                                ELSE IF m \in Q THEN "follower" ELSE role[m]]
    /\ log' = [log EXCEPT ![n] = Append(@, Blank(t))]
    /\ UNCHANGED <<base, applied, st, snap, committed, committedBy>>
Elect(n) ==
    LET c == Eff(n).cfg
    IN /\ role[n] = "follower" /\ n \in Voters(c) /\ LastIndex(n) < MaxIndex
       /\ \E t \in (term[n] + 1)..MaxTerm, Q \in SUBSET Voters(c) : BecomeLeader(n, t, Q, c)

\* The sequencer (leader only): one entry carrying a batch of requests. Requests may be
\* sequenced again (client retries racing a leader change).
Sequence(n, b) ==
    /\ role[n] = "leader" /\ LastIndex(n) < MaxIndex
    /\ log' = [log EXCEPT ![n] = Append(@, Data(term[n], b))]
    /\ UNCHANGED <<term, role, base, applied, st, snap, committed, committedBy>>

\* change_membership(goal, retain = false), one step of it: allowed only when the effective
\* config is committed; from <<C>> it appends the joint <<C, goal>>, from a joint config holding
\* goal it appends <<goal>> (from <<C, D>> with another goal, <<D, goal>>). Voters that leave
\* are dropped from the nodes replicated to. The new voters must already be members (learners).
ChangeMembership(n, g) ==
    LET e == Eff(n)
        next == IF SkipJoint \/ \E k \in DOMAIN e.cfg : e.cfg[k] = g THEN <<g>>
                ELSE <<e.cfg[Len(e.cfg)], g>>
    IN /\ role[n] = "leader" /\ LastIndex(n) < MaxIndex
       /\ e.idx <= applied[n]
       /\ next # e.cfg
       /\ g \subseteq e.nodes
       /\ log' = [log EXCEPT ![n] = Append(@, Config(term[n], next,
                                              e.nodes \ (Voters(e.cfg) \ Voters(next))))]
       /\ UNCHANGED <<term, role, base, applied, st, snap, committed, committedBy>>

\* AppendEntries from leader n to member m, from the newest point p both still hold (the log
\* below either base is committed): m keeps its entries up to p and takes the leader's after
\* it (a conflicting suffix is truncated), learns the leader's commit index and applies.
Replicate(n, m) ==
    LET p == Max(base[n].idx, base[m].idx)
    IN /\ role[n] = "leader" /\ m # n /\ m \in Eff(n).nodes /\ term[m] <= term[n]
       /\ p <= LastIndex(n) /\ p <= LastIndex(m) /\ TermAt(m, p) = TermAt(n, p)
       /\ log' = [log EXCEPT ![m] = SubSeq(log[m], 1, p - base[m].idx)
                                     \o SubSeq(log[n], p - base[n].idx + 1, Len(log[n]))]
       /\ term' = [term EXCEPT ![m] = term[n]]
       /\ role' = [role EXCEPT ![m] = "follower"]
       /\ IF applied[n] > applied[m]
             THEN /\ applied' = [applied EXCEPT ![m] = applied[n]]
                  /\ st' = [st EXCEPT ![m] = Replay(@, SubSeq(log'[m],
                                applied[m] - base[m].idx + 1, applied[n] - base[m].idx))]
             ELSE UNCHANGED <<applied, st>>
       /\ UNCHANGED <<base, snap, committed, committedBy>>

\* The leader has purged entries m still needs: it streams its current snapshot. m installs
\* it unless it is not newer than what m has committed (openraft's check): the state is
\* replaced, the log is kept after the snapshot only if m holds the snapshot's last entry,
\* otherwise emptied; everything up to the snapshot counts as purged, committed and applied.
\* (With StaleInstall, a snapshot may also arrive late, after m caught up, and m skips the
\* check.)
InstallSnapshot(n, m) ==
    LET s == snap[n]
        holds == base[m].idx <= s.idx /\ s.idx <= LastIndex(m) /\ TermAt(m, s.idx) = s.term
    IN /\ role[n] = "leader" /\ m # n /\ m \in Eff(n).nodes /\ term[m] <= term[n]
       /\ s.idx > 0
       /\ \/ StaleInstall
          \/ /\ base[n].idx > base[m].idx
             /\ ~(base[n].idx <= LastIndex(m) /\ TermAt(m, base[n].idx) = base[n].term)
       /\ term' = [term EXCEPT ![m] = term[n]]
       /\ role' = [role EXCEPT ![m] = "follower"]
       /\ IF s.idx <= applied[m] /\ ~StaleInstall
             THEN UNCHANGED <<log, base, applied, st, snap>>
             ELSE /\ log' = [log EXCEPT ![m] = IF holds
                                               THEN SubSeq(@, s.idx - base[m].idx + 1, Len(@))
                                               ELSE <<>>]
                  /\ base' = [base EXCEPT ![m] = [idx |-> s.idx, term |-> s.term,
                                                  cfg |-> s.cfg, nodes |-> s.nodes]]
                  /\ applied' = [applied EXCEPT ![m] = s.idx]
                  /\ st' = [st EXCEPT ![m] = s.st]
                  /\ snap' = [snap EXCEPT ![m] = s]
       /\ UNCHANGED <<committed, committedBy>>

\* Any node builds a snapshot of its applied state (with the membership in force there) and
\* purges its log up to Keep entries behind it.
Compact(n) ==
    LET i == IF TornSnapshot THEN applied[n] - 1 ELSE applied[n]
        c == CfgAt(n, i)
        cut == Max(base[n].idx, i - Keep)
        cc == CfgAt(n, cut)
    IN /\ i > snap[n].idx
       /\ snap' = [snap EXCEPT ![n] = [idx |-> i, term |-> TermAt(n, i), cfg |-> c.cfg,
                                       nodes |-> c.nodes, st |-> st[n]]]
       /\ base' = [base EXCEPT ![n] = [idx |-> cut, term |-> TermAt(n, cut),
                                       cfg |-> cc.cfg, nodes |-> cc.nodes]]
       /\ log' = [log EXCEPT ![n] = SubSeq(@, cut - base[n].idx + 1, Len(@))]
       /\ UNCHANGED <<term, role, applied, st, committed, committedBy>>

\* The commit rule: the newest entry of the leader's term held by a quorum of the leader's
\* effective config (both majorities while joint; the leader counts only if it is a voter);
\* the leader applies up to it. A leader outside its config steps down once that config is
\* committed.
\* m holds the leader's entry i: it holds the leader's log id at i, or at its own base if it has
\* purged i (log ids identify prefixes). The leader learns this from m's answers.
Agrees(m, n, i) == LET j == Max(i, base[m].idx)
                   IN j <= LastIndex(m) /\ j <= LastIndex(n) /\ TermAt(m, j) = TermAt(n, j)
AdvanceCommit(n) ==
    LET c == Eff(n)
        C == {i \in (applied[n] + 1)..LastIndex(n) :
                 /\ Entry(n, i).term = term[n]
                 /\ IsQuorum({m \in Nodes : Agrees(m, n, i)}, c.cfg)}
        i == SetMax(C)
        k == Len(committed)
    IN /\ role[n] = "leader" /\ C # {}
       /\ applied' = [applied EXCEPT ![n] = i]
       /\ st' = [st EXCEPT ![n] = ApplyUpTo(n, i)]
       /\ committed' = IF i > k THEN committed \o [j \in 1..(i - k) |-> Entry(n, k + j)]
                       ELSE committed
       /\ committedBy' = IF i > k THEN committedBy \o [j \in 1..(i - k) |-> term[n]]
                         ELSE committedBy
       /\ role' = [role EXCEPT ![n] = IF n \notin Voters(c.cfg) /\ c.idx <= i
                                      THEN "follower" ELSE "leader"]
       /\ UNCHANGED <<term, log, base, snap>>

Next == \/ \E n \in Nodes : Elect(n) \/ Compact(n) \/ AdvanceCommit(n)
        \/ \E n \in Nodes, b \in Batches : Sequence(n, b)
        \/ \E n \in Nodes, g \in Goals : ChangeMembership(n, g)
        \/ \E n, m \in Nodes : Replicate(n, m) \/ InstallSnapshot(n, m)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
\* Invariants

TypeOK ==
    /\ role \in [Nodes -> {"leader", "follower"}]
    /\ \A n \in Nodes : /\ base[n].idx <= snap[n].idx
                        /\ snap[n].idx <= applied[n]
                        /\ applied[n] <= LastIndex(n)

\* A single leader per term, whatever configs the nodes are in.
SingleLeaderPerTerm ==
    \A n, m \in Nodes : (role[n] = "leader" /\ role[m] = "leader" /\ term[n] = term[m])
                        => n = m

\* No event moves value twice, on any node (idempotency).
NoDoubleApply == \A n \in Nodes, e \in Events : st[n].moved[e] <= 1

\* Value is neither created nor destroyed, and no account goes negative.
Conservation == \A n \in Nodes : st[n].a + st[n].b = Funds /\ st[n].a >= 0

\* A linked chain's events moved value all or none, on every node.
ChainAtomic ==
    \A n \in Nodes, r \in Linked : \A e, f \in Range(Req[r].events) :
        (st[n].moved[e] > 0) = (st[n].moved[f] > 0)

\* Every node's log agrees with the committed prefix up to its applied index (so every node
\* applies the same entries), and its purged prefix ends on a committed entry.
CommittedLogsAgree ==
    \A n \in Nodes :
        /\ applied[n] <= Len(committed)
        /\ \A i \in (base[n].idx + 1)..applied[n] : Entry(n, i) = committed[i]
        /\ base[n].idx > 0 => committed[base[n].idx].term = base[n].term

\* A node's state (built by apply, or installed from a snapshot) is the state of replaying the
\* committed prefix up to its applied index: same balances, ids and Merkle leaves.
StateMatchesLog ==
    \A n \in Nodes : st[n] = Replay(InitState, SubSeq(committed, 1, applied[n]))

\* A node's snapshot holds the state and membership of the committed prefix up to its index.
CfgOfPrefix(k) ==
    LET P == {i \in 1..k : committed[i].kind = "config"}
    IN IF P = {} THEN [cfg |-> InitCfg, nodes |-> Nodes]
       ELSE [cfg |-> committed[SetMax(P)].cfg, nodes |-> committed[SetMax(P)].nodes]
SnapshotMatchesLog ==
    \A n \in Nodes :
        /\ snap[n].st = Replay(InitState, SubSeq(committed, 1, snap[n].idx))
        /\ [cfg |-> snap[n].cfg, nodes |-> snap[n].nodes] = CfgOfPrefix(snap[n].idx)

\* A committed entry (and so every acknowledged request: the sequencer answers only once the
\* entry is applied) is held, or purged behind a snapshot, by every leader of the term that
\* committed it or a later one (leader completeness).
CommittedNeverLost ==
    \A i \in 1..Len(committed), n \in Nodes :
        (role[n] = "leader" /\ term[n] >= committedBy[i]) =>
            \/ i <= base[n].idx
            \/ i <= LastIndex(n) /\ Entry(n, i) = committed[i]

\* Temporal: applied indexes, snapshots and purge points never go backwards on any node.
Monotonic == [][\A n \in Nodes : /\ applied'[n] >= applied[n]
                                 /\ snap'[n].idx >= snap[n].idx
                                 /\ base'[n].idx >= base[n].idx]_vars

-----------------------------------------------------------------------------
\* Request catalogues for the configurations (Req <- ...). With Funds = 2: r1 is a linked
\* chain of two transfers out of a, r2 a single one; r1 then r2 commits the chain and fails e3,
\* r2 then r1 rolls the chain back after e1 succeeded (e2 lacks funds).
ChainAndSingle == [r1 |-> [events |-> <<"e1", "e2">>, linked |-> TRUE],
                   r2 |-> [events |-> <<"e3">>, linked |-> FALSE]]
\* No ledger requests (for the membership configuration).
NoRequests == [r \in {} |-> [events |-> <<>>, linked |-> FALSE]]

\* For symmetric configurations (every node an initial voter, no membership change).
NodeSymmetry == Permutations(Nodes)
=============================================================================
