----------------------------- MODULE Pipeline -----------------------------
(***************************************************************************)
(* ron-ledger's Validated -> Sequenced -> Committed -> Applied pipeline,   *)
(* across leader changes and crashes.                                      *)
(*                                                                         *)
(* Clients submit (and keep re-submitting) prevalidated events under       *)
(* fixed ids; whoever leads a term sequences them into its log with a      *)
(* timestamp above everything in its log; entries commit once a majority   *)
(* holds them and the leader's term wrote them; every node applies the     *)
(* committed prefix in order, idempotently by event id. Crashes lose       *)
(* volatile state only: logs, votes and applied state are synced.          *)
(* tla/README.md maps every variable and action to the code.               *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS Nodes,            \* e.g. {n1, n2, n3}
          Events,           \* event (transfer) ids clients submit, e.g. {e1, e2}
          MaxTerm,          \* bound on elections
          MaxLog,           \* bound on log length
          MaxCrashes,       \* bound on crashes
          SkipIdempotency   \* TRUE plants a bug: apply does not check ids

VARIABLES validated,  \* events prevalidated and submitted by clients
          term,       \* term[n]: current term (synced with the vote)
          votedFor,   \* votedFor[n][t]: whom n voted for in term t (synced)
          role,       \* "leader" or "follower"
          log,        \* log[n]: sequence of [term, event, ts] (synced on append)
          commit,     \* commit[n]: commit index known to n (volatile)
          applied,    \* applied[n]: entries applied (synced with the state)
          seen,       \* seen[n]: event ids in n's ledger state (idempotency)
          effects,    \* effects[n][e]: times e moved value on n
          debits,     \* debits[n]: sum of posted debits on n (1 per transfer)
          credits,    \* credits[n]: sum of posted credits on n
          acked,      \* <<event, term>>: acknowledged to a client by the leader of term
          crashes

vars == <<validated, term, votedFor, role, log, commit, applied, seen, effects,
          debits, credits, acked, crashes>>

Terms == 0..MaxTerm
Quorums == {Q \in SUBSET Nodes : Cardinality(Q) * 2 > Cardinality(Nodes)}
None == "none"

LastTerm(l) == IF Len(l) = 0 THEN 0 ELSE l[Len(l)].term
LastTs(l) == IF Len(l) = 0 THEN 0 ELSE l[Len(l)].ts
\* Raft's election restriction: the candidate's log is at least as up to date.
UpToDate(a, b) == \/ LastTerm(log[a]) > LastTerm(log[b])
                  \/ /\ LastTerm(log[a]) = LastTerm(log[b])
                     /\ Len(log[a]) >= Len(log[b])
Min(a, b) == IF a < b THEN a ELSE b
Max(a, b) == IF a > b THEN a ELSE b

Init == /\ validated = {}
        /\ term = [n \in Nodes |-> 0]
        /\ votedFor = [n \in Nodes |-> [t \in Terms |-> None]]
        /\ role = [n \in Nodes |-> "follower"]
        /\ log = [n \in Nodes |-> <<>>]
        /\ commit = [n \in Nodes |-> 0]
        /\ applied = [n \in Nodes |-> 0]
        /\ seen = [n \in Nodes |-> {}]
        /\ effects = [n \in Nodes |-> [e \in Events |-> 0]]
        /\ debits = [n \in Nodes |-> 0]
        /\ credits = [n \in Nodes |-> 0]
        /\ acked = {}
        /\ crashes = 0

\* Ingress + prevalidation on any node: the event becomes eligible for sequencing.
\* Retries re-submit the same id, which changes nothing here.
Submit(e) == /\ e \notin validated
             /\ validated' = validated \cup {e}
             /\ UNCHANGED <<term, votedFor, role, log, commit, applied, seen, effects,
                            debits, credits, acked, crashes>>

\* An election: n gathers votes from a quorum in a new term.
BecomeLeader(n, t, Q) ==
    /\ t \in Terms /\ t > term[n] /\ n \in Q
    /\ \A m \in Q : /\ term[m] < t
                    /\ votedFor[m][t] = None
                    /\ UpToDate(n, m)
    /\ term' = [m \in Nodes |-> IF m \in Q THEN t ELSE term[m]]
    /\ votedFor' = [m \in Nodes |-> IF m \in Q THEN [votedFor[m] EXCEPT ![t] = n]
                                              ELSE votedFor[m]]
    /\ role' = [m \in Nodes |-> IF m = n THEN "leader"
                                ELSE IF m \in Q THEN "follower" ELSE role[m]]
    /\ UNCHANGED <<validated, log, commit, applied, seen, effects, debits, credits,
                   acked, crashes>>

\* The Sequencer (leader only): append an event with a timestamp above its whole log.
\* It may sequence an event again (a client retry racing a leader change).
Sequence(n, e) ==
    /\ role[n] = "leader" /\ e \in validated /\ Len(log[n]) < MaxLog
    /\ log' = [log EXCEPT ![n] = Append(@, [term |-> term[n], event |-> e,
                                            ts |-> LastTs(@) + 1])]
    /\ UNCHANGED <<validated, term, votedFor, role, commit, applied, seen, effects,
                   debits, credits, acked, crashes>>

\* AppendEntries: the leader's log replaces the follower's (conflicts truncated),
\* and the follower learns the leader's commit index (commit indexes only grow).
Replicate(n, m) ==
    /\ role[n] = "leader" /\ m # n /\ term[m] <= term[n]
    /\ log' = [log EXCEPT ![m] = log[n]]
    /\ term' = [term EXCEPT ![m] = term[n]]
    /\ role' = [role EXCEPT ![m] = "follower"]
    /\ commit' = [commit EXCEPT ![m] = Max(@, Min(commit[n], Len(log[n])))]
    /\ UNCHANGED <<validated, votedFor, applied, seen, effects, debits, credits,
                   acked, crashes>>

\* The Committer: an index commits when a quorum holds the leader's entry there
\* and that entry is from the leader's own term.
Agrees(m, n, i) == Len(log[m]) >= i /\ log[m][i] = log[n][i]
AdvanceCommit(n) ==
    /\ role[n] = "leader"
    /\ \E i \in (commit[n] + 1)..Len(log[n]) :
          /\ log[n][i].term = term[n]
          /\ \E Q \in Quorums : \A m \in Q : Agrees(m, n, i)
          /\ commit' = [commit EXCEPT ![n] = i]
    /\ UNCHANGED <<validated, term, votedFor, role, log, applied, seen, effects,
                   debits, credits, acked, crashes>>

\* Apply the next committed entry, idempotently by event id; one atomic write.
Apply(n) ==
    /\ applied[n] < commit[n]
    /\ LET e == log[n][applied[n] + 1].event
           fresh == SkipIdempotency \/ e \notin seen[n]
       IN /\ applied' = [applied EXCEPT ![n] = @ + 1]
          /\ seen' = [seen EXCEPT ![n] = @ \cup {e}]
          /\ effects' = IF fresh THEN [effects EXCEPT ![n][e] = @ + 1] ELSE effects
          /\ debits' = IF fresh THEN [debits EXCEPT ![n] = @ + 1] ELSE debits
          /\ credits' = IF fresh THEN [credits EXCEPT ![n] = @ + 1] ELSE credits
    /\ UNCHANGED <<validated, term, votedFor, role, log, commit, acked, crashes>>

\* The leader answers the client once an entry carrying the event is applied there.
Ack(n, e) ==
    /\ role[n] = "leader" /\ <<e, term[n]>> \notin acked
    /\ \E i \in 1..applied[n] : log[n][i].event = e
    /\ acked' = acked \cup {<<e, term[n]>>}
    /\ UNCHANGED <<validated, term, votedFor, role, log, commit, applied, seen, effects,
                   debits, credits, crashes>>

\* A crash loses the role and the commit index beyond what was applied; the log,
\* votes and applied state were synced and survive.
Crash(n) ==
    /\ crashes < MaxCrashes
    /\ role' = [role EXCEPT ![n] = "follower"]
    /\ commit' = [commit EXCEPT ![n] = applied[n]]
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<validated, term, votedFor, log, applied, seen, effects, debits,
                   credits, acked>>

Next == \/ \E e \in Events : Submit(e)
        \/ \E n \in Nodes, t \in Terms, Q \in Quorums : BecomeLeader(n, t, Q)
        \/ \E n \in Nodes, e \in Events : Sequence(n, e)
        \/ \E n, m \in Nodes : Replicate(n, m)
        \/ \E n \in Nodes : AdvanceCommit(n)
        \/ \E n \in Nodes : Apply(n)
        \/ \E n \in Nodes, e \in Events : Ack(n, e)
        \/ \E n \in Nodes : Crash(n)

Spec == Init /\ [][Next]_vars

-------------------------------------------------------------------------------
\* Invariants

TypeOK == /\ role \in [Nodes -> {"leader", "follower"}]
          /\ \A n \in Nodes : applied[n] <= commit[n] /\ commit[n] <= Len(log[n])

\* A single writer (leader / committer) per term.
SingleLeaderPerTerm ==
    \A n, m \in Nodes : (role[n] = "leader" /\ role[m] = "leader" /\ term[n] = term[m])
                        => n = m

\* No event moves value twice, on any node (idempotency).
NoDoubleApply == \A n \in Nodes, e \in Events : effects[n][e] <= 1

\* Conservation: every applied transfer adds the same amount to debits and credits.
Conservation == \A n \in Nodes : debits[n] = credits[n]

\* Nodes that applied index i applied the same entry there (same root at the same index).
AppliedPrefixesAgree ==
    \A n, m \in Nodes : \A i \in 1..Min(applied[n], applied[m]) : log[n][i] = log[m][i]

\* An acknowledged event is never lost: the log of every leader of the acknowledging term or
\* a later one carries it (a deposed leader of an older term may still think it leads).
AckedNeverLost ==
    \A a \in acked : \A n \in Nodes :
        (role[n] = "leader" /\ term[n] >= a[2]) => \E i \in 1..Len(log[n]) : log[n][i].event = a[1]

\* Cluster time is strictly increasing along every log.
TimestampsIncrease ==
    \A n \in Nodes : \A i \in 1..(Len(log[n]) - 1) : log[n][i].ts < log[n][i + 1].ts

\* Temporal: committed and applied indexes never go backwards on any node
\* (commit only through a crash back to what was applied).
Monotonic == [][\A n \in Nodes : /\ applied'[n] >= applied[n]
                                 /\ commit'[n] >= applied[n]]_vars
=============================================================================
