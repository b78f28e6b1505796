/*
 * Deciding and evidencing word, phrase and boolean rules in C (optional; the Python evaluator in
 * watchers.rules.matcher is the specification, and watchers.rules.compiled says which rules come
 * here).
 *
 * An Engine holds rules whose every term is a word (its key, the other keys of its alias group,
 * its compound reading written apart), a fuzzy term or an exact phrase of words (each found by
 * the keys of its alias group), joined by AND, OR, NOT and NEAR (of terms, phrases and ORs of
 * them). Such a rule's truth and evidence depend only on where its keys occur in the article's
 * token lists, so the engine reads the lists FieldText already holds:
 *
 *   1. each field's token keys are looked up in the engine's key table (a bitset on the str's
 *      cached hash first: most words of an article are in no rule), and the token numbers of
 *      every key a rule uses are gathered per field;
 *   2. the rules anchored on a key found (or anchored on nothing) are evaluated in rule order:
 *      a word term hits each token of its keys in the term's fields; a phrase hits where each
 *      later word's first token at the position after the previous one's last is found (an
 *      alias hit, with the tokens' norms as its variant, when a word is found by another key
 *      of its group); AND needs every positive child then no NOT child true; OR collects every
 *      true child's hits; NEAR keeps the hits of each side's occurrences (one hit each) within
 *      its distance of one of the other side's, as Evaluator._near pairs them;
 *   3. a true rule's hits are sorted by (field rank, start, end, term), equal ones kept once,
 *      the first MAX_HITS kept as Hit models (shared between rules over one article) and the
 *      score summed over all of them by field weight, as Evaluator._build_hits does; the Match
 *      and Hit models are built unvalidated, by setting their slots as matcher._trusted does.
 *
 * Engine.match(fields, article_id[, verdicts[, extra]]) -> [Match, ...] in rule order, where
 * fields is a tuple with one entry per field rank: None, or (keys, starts, ends, pos, last, text)
 * of that field's FieldText (pos and last None when every token's position is its number), and
 * extra the matches of the rules evaluated elsewhere, [(rule number, Match), ...] in rule order:
 * each goes in among the engine's by its number (no pair per match is made, nor sorted after).
 * Engine.decide(...) is the same with a models.Decision (rule, article id, score; slots set
 * where they are) per rule that matches instead of a Match, and none of the evidence built.
 *
 * Fuzzy terms: the engine keeps each word's verdicts, ((fuzzy term, kind, score, whole word
 * only), ...) or () when no fuzzy term accepts it, as the caller computed them (learn), and
 * each entry of its table of strs seen holds its str's, so a word is looked up once. When an
 * article holds words it has no verdicts for, match and candidates return the set of those
 * words instead; the caller computes their verdicts, has the engine learn them and asks
 * again, passing them too (a third argument, a dict), so a forget in between costs one more
 * round, never a word without verdicts.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

/* A hint to the processor to bring what p points at into the cache; it changes no result.
 * GCC 12 at -O2 drops most of this file's __builtin_prefetch calls as dead code, so on x86 the
 * instruction is written out. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PREFETCH(p) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(p)))
#elif defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)0)
#endif

enum { OP_WORD = 0, OP_PHRASE = 1, OP_AND = 2, OP_OR = 3, OP_NOT = 4, OP_FUZZY = 5, OP_NEAR = 6 };
#define NRANKS 4
#define BLOOM_BITS 16

typedef struct {
    int op;
    int a;      /* term number (word, phrase); positive children (AND); distance (NEAR) */
    int mask;   /* field ranks (word, phrase) */
    int n;      /* children */
    int first;  /* index of the first child in Engine.kids */
} Node;

typedef struct {
    int kind;   /* OP_WORD, OP_PHRASE or OP_FUZZY */
    /* a word: its key, then the other keys of its alias group; a phrase: its words' keys, each
     * word's own key first, then the other keys of its alias group */
    int nkeys;
    int first;  /* index of the first key in Engine.term_keys */
    int nwords; /* a phrase's words */
    int sizes;  /* a phrase: index in Engine.term_sizes of its words' key counts, or -1 when
                 * each word has one key */
    int left, right;  /* a word's compound reading as two words written apart, or -1 */
    PyObject *label;
} TermSpec;

typedef struct {
    PyObject *name;
    Py_ssize_t number;  /* the caller's rule number */
    PyObject *numobj;   /* the same, as the caller's int */
    int root;
} RuleSpec;

/* A hit while evaluating: the Hit model is made when the rule matches. */
typedef struct {
    int rank, term;
    PyObject *kind;  /* borrowed: the engine's or the call's verdicts' */
    double score;
    Py_ssize_t start, end;
    Py_ssize_t vi, vj;  /* the variant: no token (-1), token vi's norm, or "norm_vi norm_vj" */
    Py_ssize_t vc;      /* or, vn > 0: the norms of Scratch.chain[vc..vc+vn) joined by spaces */
    Py_ssize_t vn;
    Py_ssize_t t0, t1;  /* its first and last token: NEAR reads the positions it covers */
} Raw;

typedef struct {
    unsigned gen;
    Py_ssize_t start[NRANKS];
    Py_ssize_t count[NRANKS];
} KeyOcc;

typedef struct {
    int key, rank;
    Py_ssize_t tok;
    PyObject *kind;  /* a fuzzy term's verdict on the token (borrowed), or NULL */
    double score;
} Pair;

typedef struct {
    unsigned gen;
    int term, rank;
    PyObject *kind;
    double score;
    Py_ssize_t start, end, vi, vj, vc, vn;
    PyObject *hit;  /* borrowed from the article's list of made hits */
} HitSlot;

typedef struct {
    /* per article */
    unsigned gen;
    KeyOcc *occ;            /* per key */
    int *touched;           /* keys found, in order found */
    int ntouched;
    Pair *pairs;            /* the tokens of the engine's keys, field by field */
    Py_ssize_t npairs, cap_pairs;
    Py_ssize_t *toks;       /* token numbers by key and rank */
    PyObject **tok_kind;    /* beside each: a fuzzy term's verdict kind and score */
    double *tok_score;
    Py_ssize_t *fill;       /* per key and rank while filling */
    unsigned *rule_gen;     /* per rule: the article it was last queued for */
    int *queue;
    int nqueue;
    Raw *raw;
    Py_ssize_t nraw, cap_raw;
    HitSlot *slots;
    Py_ssize_t cap_slots, nslots;
    Py_ssize_t *chain;      /* the tokens of phrase hits' variants (kept for the article) */
    Py_ssize_t nchain, cap_chain;
    PyObject *made;         /* list: the Hit models made for this article (owns them) */
    PyObject *learned;      /* the engine's verdicts dict when the call began (held: a forget
                             * meanwhile must not free the verdicts the call borrows) */
    PyObject **unknown;     /* tokens' keys with no verdicts yet (borrowed from the fields) */
    Py_ssize_t nunknown, cap_unknown;
    /* the fields of this article */
    PyObject *keys[NRANKS], *starts[NRANKS], *ends[NRANKS], *pos[NRANKS], *last[NRANKS];
    PyObject *text[NRANKS], *norms[NRANKS];
    Py_ssize_t ntok[NRANKS];
    int busy;
} Scratch;

/* A token key str seen before, its key number (-1: none) and, once known, its fuzzy verdicts
 * (a value of Engine.learned, held; NULL: not looked up since the str or the dict changed). */
typedef struct {
    PyObject *str;
    PyObject *verdicts;
    int key;
} Seen;
#define SEEN_BITS 15
/* Entries a str may take, by its hash: a word's keys are several strs ("the" of "The" and of
 * "the"), which would otherwise push each other out of one entry, article after article. */
#define SEEN_WAYS 4

typedef struct {
    PyObject_HEAD
    PyObject *keymap;       /* dict: key -> key number */
    int nfuzzy;             /* fuzzy terms: key numbers nkeys.. nkeys + nfuzzy - 1 */
    PyObject *learned;      /* dict: word -> its fuzzy verdicts (see the module docstring) */
    /* The tokeniser gives every occurrence of a word as written the same key str (its fold
     * cache's), so a table by identity answers most lookups with a compare or a few. It holds
     * each str it names, so no other str can take its address. */
    Seen *seen;
    int nkeys;
    unsigned char bloom[1 << (BLOOM_BITS - 3)];
    TermSpec *terms;
    int nterms;
    int *term_keys;
    int *term_sizes;
    RuleSpec *rules;
    int nrules;
    Node *nodes;
    int nnodes, cap_nodes;
    int *kids;
    int nkids, cap_kids;
    int **anchored;         /* per key: rules anchored on it, -1 ended */
    int *always;            /* rules anchored on nothing, -1 ended */
    int rank_mask;          /* the ranks some rule reads */
    double weight[NRANKS];
    Py_ssize_t max_hits;
    PyObject *hit_type, *match_type;
    /* What decide makes per rule: models.Decision, and where its rule, article_id and score
     * slots are (their members' offsets). */
    PyObject *decision_type;
    Py_ssize_t decision_at[3];
    PyObject *set_dict, *set_fields_set, *set_extra, *set_private;
    /* Where the fields set, extra and private slots are in both model types (the setters'
     * member offsets), or -1: then every slot is set through its descriptor. */
    Py_ssize_t slot_at[3];
    PyObject *hit_fields, *match_fields;  /* the sets every model of each kind shares */
    PyObject *hit_template;  /* a Hit's values, to copy: a dict made whole, never resized */
    PyObject *field_names;  /* tuple of NRANKS str */
    PyObject *exact, *alias, *hundred, *sum, *round;
    PyObject *s_term, *s_field, *s_start, *s_end, *s_text, *s_kind, *s_score, *s_variant;
    PyObject *s_rule, *s_article_id, *s_hits;
    Scratch scratch;
} Engine;

/* ---------------------------------------------------------------------------------------- */

static int
add_node(Engine *e, Node nd)
{
    if (e->nnodes == e->cap_nodes) {
        int cap = e->cap_nodes ? e->cap_nodes * 2 : 256;
        Node *p = PyMem_Realloc(e->nodes, sizeof(Node) * (size_t)cap);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        e->nodes = p;
        e->cap_nodes = cap;
    }
    e->nodes[e->nnodes] = nd;
    return e->nnodes++;
}

static int
reserve_kids(Engine *e, int n)
{
    if (e->nkids + n > e->cap_kids) {
        int cap = e->cap_kids ? e->cap_kids : 256;
        while (cap < e->nkids + n) {
            cap *= 2;
        }
        int *p = PyMem_Realloc(e->kids, sizeof(int) * (size_t)cap);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        e->kids = p;
        e->cap_kids = cap;
    }
    return 0;
}

static int compile_node(Engine *e, PyObject *prog, int depth);

static int
compile_children(Engine *e, PyObject *seq, int depth, int *out, int n)
{
    for (int i = 0; i < n; i++) {
        int c = compile_node(e, PyTuple_GET_ITEM(seq, i), depth + 1);
        if (c < 0) {
            return -1;
        }
        out[i] = c;
    }
    return 0;
}

/* A program node: (0|1|5, term, mask), (2, (positive...), (negated...)), (3, (child...)),
 * (4, child), (6, left, right, distance). */
static int
compile_node(Engine *e, PyObject *prog, int depth)
{
    if (depth > 200) {
        PyErr_SetString(PyExc_ValueError, "Engine: program nested too deeply");
        return -1;
    }
    if (!PyTuple_Check(prog) || PyTuple_GET_SIZE(prog) < 2) {
        PyErr_SetString(PyExc_TypeError, "Engine: a program node must be a tuple (op, ...)");
        return -1;
    }
    long op = PyLong_AsLong(PyTuple_GET_ITEM(prog, 0));
    if (op == -1 && PyErr_Occurred()) {
        return -1;
    }
    Node nd = {(int)op, 0, 0, 0, 0};
    if (op == OP_WORD || op == OP_PHRASE || op == OP_FUZZY) {
        if (PyTuple_GET_SIZE(prog) != 3) {
            PyErr_SetString(PyExc_TypeError, "Engine: a term node is (op, term, mask)");
            return -1;
        }
        long t = PyLong_AsLong(PyTuple_GET_ITEM(prog, 1));
        long mask = PyLong_AsLong(PyTuple_GET_ITEM(prog, 2));
        if (PyErr_Occurred()) {
            return -1;
        }
        if (t < 0 || t >= e->nterms || mask <= 0 || mask >= (1 << NRANKS)
            || e->terms[t].kind != op) {
            PyErr_SetString(PyExc_ValueError, "Engine: bad term node");
            return -1;
        }
        nd.a = (int)t;
        nd.mask = (int)mask;
        e->rank_mask |= (int)mask;
        return add_node(e, nd);
    }
    if (op == OP_AND) {
        if (PyTuple_GET_SIZE(prog) != 3 || !PyTuple_Check(PyTuple_GET_ITEM(prog, 1))
            || !PyTuple_Check(PyTuple_GET_ITEM(prog, 2))) {
            PyErr_SetString(PyExc_TypeError, "Engine: AND is (2, positives, negated)");
            return -1;
        }
        PyObject *pos = PyTuple_GET_ITEM(prog, 1), *neg = PyTuple_GET_ITEM(prog, 2);
        int np = (int)PyTuple_GET_SIZE(pos), nn = (int)PyTuple_GET_SIZE(neg);
        int *tmp = PyMem_Malloc(sizeof(int) * (size_t)(np + nn + 1));
        if (tmp == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (compile_children(e, pos, depth, tmp, np) < 0
            || compile_children(e, neg, depth, tmp + np, nn) < 0
            || reserve_kids(e, np + nn) < 0) {
            PyMem_Free(tmp);
            return -1;
        }
        nd.a = np;
        nd.n = np + nn;
        nd.first = e->nkids;
        memcpy(e->kids + e->nkids, tmp, sizeof(int) * (size_t)(np + nn));
        e->nkids += np + nn;
        PyMem_Free(tmp);
        return add_node(e, nd);
    }
    if (op == OP_OR) {
        if (PyTuple_GET_SIZE(prog) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(prog, 1))) {
            PyErr_SetString(PyExc_TypeError, "Engine: OR is (3, children)");
            return -1;
        }
        PyObject *ch = PyTuple_GET_ITEM(prog, 1);
        int n = (int)PyTuple_GET_SIZE(ch);
        int *tmp = PyMem_Malloc(sizeof(int) * (size_t)(n + 1));
        if (tmp == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (compile_children(e, ch, depth, tmp, n) < 0 || reserve_kids(e, n) < 0) {
            PyMem_Free(tmp);
            return -1;
        }
        nd.n = n;
        nd.first = e->nkids;
        memcpy(e->kids + e->nkids, tmp, sizeof(int) * (size_t)n);
        e->nkids += n;
        PyMem_Free(tmp);
        return add_node(e, nd);
    }
    if (op == OP_NOT) {
        int c = compile_node(e, PyTuple_GET_ITEM(prog, 1), depth + 1);
        if (c < 0 || reserve_kids(e, 1) < 0) {
            return -1;
        }
        nd.n = 1;
        nd.first = e->nkids;
        e->kids[e->nkids++] = c;
        return add_node(e, nd);
    }
    if (op == OP_NEAR) {
        if (PyTuple_GET_SIZE(prog) != 4) {
            PyErr_SetString(PyExc_TypeError, "Engine: NEAR is (6, left, right, distance)");
            return -1;
        }
        long distance = PyLong_AsLong(PyTuple_GET_ITEM(prog, 3));
        if (distance == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (distance < 0 || distance > INT_MAX / 4) {
            PyErr_SetString(PyExc_ValueError, "Engine: bad NEAR distance");
            return -1;
        }
        int left = compile_node(e, PyTuple_GET_ITEM(prog, 1), depth + 1);
        int right = left < 0 ? -1 : compile_node(e, PyTuple_GET_ITEM(prog, 2), depth + 1);
        if (right < 0 || reserve_kids(e, 2) < 0) {
            return -1;
        }
        nd.a = (int)distance;
        nd.n = 2;
        nd.first = e->nkids;
        e->kids[e->nkids++] = left;
        e->kids[e->nkids++] = right;
        return add_node(e, nd);
    }
    PyErr_Format(PyExc_ValueError, "Engine: unknown op %ld", op);
    return -1;
}

static inline Py_hash_t
str_hash(PyObject *s)
{
    return PyObject_Hash(s);  /* cached in the str after the first time */
}

static inline unsigned
bloom_bit(Py_hash_t h)
{
    return (unsigned)((size_t)h ^ ((size_t)h >> 17)) & ((1u << BLOOM_BITS) - 1);
}

static int *
int_list(PyObject *seq, const char *what)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (fast == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    int *out = PyMem_Malloc(sizeof(int) * (size_t)(n + 1));
    if (out == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if (v == -1 && PyErr_Occurred()) {
            PyMem_Free(out);
            Py_DECREF(fast);
            return NULL;
        }
        out[i] = (int)v;
    }
    out[n] = -1;
    Py_DECREF(fast);
    return out;
}

static void
scratch_free(Scratch *s)
{
    PyMem_Free(s->occ);
    PyMem_Free(s->touched);
    PyMem_Free(s->pairs);
    PyMem_Free(s->toks);
    PyMem_Free(s->tok_kind);
    PyMem_Free(s->tok_score);
    PyMem_Free(s->fill);
    PyMem_Free(s->rule_gen);
    PyMem_Free(s->queue);
    PyMem_Free(s->raw);
    PyMem_Free(s->slots);
    PyMem_Free(s->chain);
    PyMem_Free(s->unknown);
    Py_CLEAR(s->made);
    Py_CLEAR(s->learned);
    memset(s, 0, sizeof(*s));
}

static int
scratch_init(Scratch *s, Engine *e)
{
    memset(s, 0, sizeof(*s));
    size_t nk = (size_t)e->nkeys + (size_t)e->nfuzzy + 1;
    s->occ = PyMem_Calloc(nk, sizeof(KeyOcc));
    s->touched = PyMem_Malloc(sizeof(int) * nk);
    s->fill = PyMem_Malloc(sizeof(Py_ssize_t) * NRANKS * nk);
    s->rule_gen = PyMem_Calloc((size_t)e->nrules + 1, sizeof(unsigned));
    s->queue = PyMem_Malloc(sizeof(int) * ((size_t)e->nrules + 1));
    if (!s->occ || !s->touched || !s->fill || !s->rule_gen || !s->queue) {
        scratch_free(s);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */

static void slot_offsets(Engine *e, PyObject *const *setters);

/* The offset of ``descr`` when it is a writable object member (T_OBJECT_EX) that each of the
 * ``n`` types has within its fixed size (each deriving from the member's own type), else -1. */
static Py_ssize_t
object_member_at(PyObject *descr, PyTypeObject *const *types, int n)
{
    if (!PyObject_TypeCheck(descr, &PyMemberDescr_Type)) {
        return -1;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY)
        || m->offset < (Py_ssize_t)sizeof(PyObject)) {
        return -1;
    }
    for (int t = 0; t < n; t++) {
        if (!PyType_IsSubtype(types[t], PyDescr_TYPE(descr))
            || m->offset + (Py_ssize_t)sizeof(PyObject *) > types[t]->tp_basicsize
            || types[t]->tp_itemsize != 0) {
            return -1;
        }
    }
    return m->offset;
}

/* Sets decision_at from the decision type's rule, article_id and score members: object slots
 * of a type without a dict or items, written where they are as the members would. */
static int
decision_slots(Engine *e)
{
    static const char *names[3] = {"rule", "article_id", "score"};
    PyTypeObject *tp = (PyTypeObject *)e->decision_type;
    if (!PyType_Check(e->decision_type) || tp->tp_itemsize != 0 || tp->tp_dictoffset != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "Engine: the decision type must be a class of slots, without a dict");
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        PyObject *d = PyObject_GetAttrString(e->decision_type, names[i]);
        if (d == NULL) {
            PyErr_Clear();
        }
        /* The type's own slot (a subclass's inherited one would be written as the base's). */
        Py_ssize_t at = d != NULL ? object_member_at(d, &tp, 1) : -1;
        int ok = at >= 0 && PyDescr_TYPE(d) == tp;
        if (ok) {
            e->decision_at[i] = at;
        }
        Py_XDECREF(d);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "Engine: the decision type's %s must be a slot",
                         names[i]);
            return -1;
        }
    }
    return 0;
}

static PyObject *
engine_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *keys, *terms, *rules, *anchors, *always, *models;
    int nfuzzy = 0;
    static char *kwlist[] = {"keys", "terms", "rules", "anchors", "always", "models", "fuzzy",
                             NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!OO!|i:Engine", kwlist, &PyList_Type,
                                     &keys, &PyList_Type, &terms, &PyList_Type, &rules,
                                     &PyList_Type, &anchors, &always, &PyTuple_Type, &models,
                                     &nfuzzy)) {
        return NULL;
    }
    if (nfuzzy < 0) {
        PyErr_SetString(PyExc_ValueError, "Engine: fuzzy must be >= 0");
        return NULL;
    }
    Engine *e = (Engine *)type->tp_alloc(type, 0);
    if (e == NULL) {
        return NULL;
    }
    e->nfuzzy = nfuzzy;
    e->learned = PyDict_New();
    if (e->learned == NULL) {
        Py_DECREF(e);
        return NULL;
    }
    {
        PyObject *builtins = PyEval_GetBuiltins();  /* borrowed */
        e->sum = Py_XNewRef(PyDict_GetItemString(builtins, "sum"));
        e->round = Py_XNewRef(PyDict_GetItemString(builtins, "round"));
        if (e->sum == NULL || e->round == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "Engine: no builtins sum and round");
            Py_DECREF(e);
            return NULL;
        }
    }
    /* models: (Hit, Match, set __dict__, set fields set, set extra, set private, hit fields,
     *          match fields, field names, weights, max hits, "exact", Decision) */
    if (PyTuple_GET_SIZE(models) != 13) {
        PyErr_SetString(PyExc_TypeError, "Engine: models must have 13 items");
        goto fail;
    }
    PyObject **m = &PyTuple_GET_ITEM(models, 0);
    e->hit_type = Py_NewRef(m[0]);
    e->match_type = Py_NewRef(m[1]);
    e->set_dict = Py_NewRef(m[2]);
    e->set_fields_set = Py_NewRef(m[3]);
    e->set_extra = Py_NewRef(m[4]);
    e->set_private = Py_NewRef(m[5]);
    e->hit_fields = PySet_New(m[6]);
    e->match_fields = PySet_New(m[7]);
    if (e->hit_fields == NULL || e->match_fields == NULL) {
        goto fail;
    }
    e->field_names = Py_NewRef(m[8]);
    e->exact = PyUnicode_InternFromString("exact");
    e->alias = PyUnicode_InternFromString("alias");
    if (e->exact == NULL || e->alias == NULL) {
        goto fail;
    }
    (void)m[11];
    if (!PyType_Check(e->hit_type) || !PyType_Check(e->match_type)
        || !PyTuple_Check(e->field_names) || PyTuple_GET_SIZE(e->field_names) != NRANKS
        || !PyTuple_Check(m[9]) || PyTuple_GET_SIZE(m[9]) != NRANKS) {
        PyErr_SetString(PyExc_TypeError, "Engine: bad models");
        goto fail;
    }
    PyObject *setters[4] = {e->set_dict, e->set_fields_set, e->set_extra, e->set_private};
    for (int i = 0; i < 4; i++) {
        if (Py_TYPE(setters[i])->tp_descr_set == NULL) {
            PyErr_SetString(PyExc_TypeError, "Engine: a setter must be a data descriptor");
            goto fail;
        }
    }
    slot_offsets(e, setters + 1);
    e->decision_type = Py_NewRef(m[12]);
    if (decision_slots(e) < 0) {
        goto fail;
    }
    for (int r = 0; r < NRANKS; r++) {
        e->weight[r] = PyFloat_AsDouble(PyTuple_GET_ITEM(m[9], r));
    }
    e->max_hits = PyLong_AsSsize_t(m[10]);
    if (PyErr_Occurred()) {
        goto fail;
    }
    e->hundred = PyFloat_FromDouble(100.0);
    const char *names[] = {"term", "field", "start", "end", "text", "kind", "score", "variant",
                           "rule", "article_id", "hits"};
    PyObject **slots[] = {&e->s_term, &e->s_field, &e->s_start, &e->s_end, &e->s_text,
                          &e->s_kind, &e->s_score, &e->s_variant, &e->s_rule,
                          &e->s_article_id, &e->s_hits};
    for (int i = 0; i < 11; i++) {
        *slots[i] = PyUnicode_InternFromString(names[i]);
        if (*slots[i] == NULL) {
            goto fail;
        }
    }
    if (e->hundred == NULL) {
        goto fail;
    }
    e->hit_template = PyDict_New();
    if (e->hit_template == NULL) {
        goto fail;
    }
    {
        /* An exact hit's kind, score and variant are the template's: most hits set only the
         * other five. */
        PyObject *order[] = {e->s_term, e->s_field, e->s_start, e->s_end, e->s_text, e->s_kind,
                             e->s_score, e->s_variant};
        PyObject *values[] = {Py_None, Py_None, Py_None, Py_None, Py_None, e->exact,
                              e->hundred, Py_None};
        for (int i = 0; i < 8; i++) {
            if (PyDict_SetItem(e->hit_template, order[i], values[i]) < 0) {
                goto fail;
            }
        }
    }

    /* keys */
    e->nkeys = (int)PyList_GET_SIZE(keys);
    e->keymap = PyDict_New();
    if (e->keymap == NULL) {
        goto fail;
    }
    for (int k = 0; k < e->nkeys; k++) {
        PyObject *key = PyList_GET_ITEM(keys, k);
        if (!PyUnicode_CheckExact(key)) {
            PyErr_SetString(PyExc_TypeError, "Engine: keys must be str");
            goto fail;
        }
        PyObject *num = PyLong_FromLong(k);
        if (num == NULL || PyDict_SetItem(e->keymap, key, num) < 0) {
            Py_XDECREF(num);
            goto fail;
        }
        Py_DECREF(num);
        Py_hash_t h = str_hash(key);
        if (h == -1) {
            goto fail;
        }
        unsigned b = bloom_bit(h);
        e->bloom[b >> 3] |= (unsigned char)(1u << (b & 7));
    }
    if (PyDict_GET_SIZE(e->keymap) != e->nkeys) {
        PyErr_SetString(PyExc_ValueError, "Engine: keys must be distinct");
        goto fail;
    }

    /* terms: (kind, (key, ...), label, split): a word's split is its compound reading's two
     * keys or (); a phrase's, its words' key counts or () when each word has one key */
    e->nterms = (int)PyList_GET_SIZE(terms);
    e->terms = PyMem_Calloc((size_t)e->nterms + 1, sizeof(TermSpec));
    Py_ssize_t total = 0, nsizes = 0;
    for (int t = 0; t < e->nterms; t++) {
        PyObject *spec = PyList_GET_ITEM(terms, t);
        if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 4
            || !PyTuple_Check(PyTuple_GET_ITEM(spec, 1))
            || !PyTuple_Check(PyTuple_GET_ITEM(spec, 3))) {
            PyErr_SetString(PyExc_TypeError, "Engine: a term is (kind, keys, label, split)");
            goto fail;
        }
        total += PyTuple_GET_SIZE(PyTuple_GET_ITEM(spec, 1));
        nsizes += PyTuple_GET_SIZE(PyTuple_GET_ITEM(spec, 3));
    }
    e->term_keys = PyMem_Malloc(sizeof(int) * ((size_t)total + 1));
    e->term_sizes = PyMem_Malloc(sizeof(int) * ((size_t)nsizes + 1));
    if (e->terms == NULL || e->term_keys == NULL || e->term_sizes == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    int at = 0, at_sizes = 0;
    for (int t = 0; t < e->nterms; t++) {
        PyObject *spec = PyList_GET_ITEM(terms, t);
        PyObject *tk = PyTuple_GET_ITEM(spec, 1);
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(spec, 0));
        if (kind == -1 && PyErr_Occurred()) {
            goto fail;
        }
        int n = (int)PyTuple_GET_SIZE(tk);
        PyObject *split = PyTuple_GET_ITEM(spec, 3);
        Py_ssize_t nsplit = PyTuple_GET_SIZE(split);
        if ((kind != OP_WORD && kind != OP_PHRASE && kind != OP_FUZZY) || n < 1
            || (kind == OP_FUZZY && n != 1)
            || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 2))
            || (nsplit != 0 && kind == OP_FUZZY)
            || (nsplit != 0 && nsplit != 2 && kind == OP_WORD)) {
            PyErr_SetString(PyExc_ValueError, "Engine: bad term");
            goto fail;
        }
        e->terms[t].kind = (int)kind;
        e->terms[t].nkeys = n;
        e->terms[t].first = at;
        e->terms[t].label = Py_NewRef(PyTuple_GET_ITEM(spec, 2));
        e->terms[t].left = e->terms[t].right = -1;
        e->terms[t].nwords = kind == OP_PHRASE ? n : 1;
        e->terms[t].sizes = -1;
        if (kind == OP_PHRASE && nsplit != 0) {
            long sum = 0;
            for (Py_ssize_t w = 0; w < nsplit; w++) {
                long c = PyLong_AsLong(PyTuple_GET_ITEM(split, w));
                if (c < 1 || c > n) {
                    if (!PyErr_Occurred()) {
                        PyErr_SetString(PyExc_ValueError, "Engine: bad key count of a word");
                    }
                    goto fail;
                }
                sum += c;
                e->term_sizes[at_sizes + w] = (int)c;
            }
            if (sum != n) {
                PyErr_SetString(PyExc_ValueError,
                                "Engine: a phrase's key counts must sum to its keys");
                goto fail;
            }
            e->terms[t].nwords = (int)nsplit;
            e->terms[t].sizes = at_sizes;
            at_sizes += (int)nsplit;
        }
        else if (nsplit == 2 && kind == OP_WORD) {
            long l = PyLong_AsLong(PyTuple_GET_ITEM(split, 0));
            long r = PyLong_AsLong(PyTuple_GET_ITEM(split, 1));
            if (l < 0 || l >= e->nkeys || r < 0 || r >= e->nkeys) {
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_ValueError, "Engine: a split's key is out of range");
                }
                goto fail;
            }
            e->terms[t].left = (int)l;
            e->terms[t].right = (int)r;
        }
        for (int j = 0; j < n; j++) {
            long k = PyLong_AsLong(PyTuple_GET_ITEM(tk, j));
            int fuzzy_key = k >= e->nkeys && k < e->nkeys + e->nfuzzy;
            if (k < 0 || (kind == OP_FUZZY ? !fuzzy_key : k >= e->nkeys)) {
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_ValueError, "Engine: a term's key is out of range");
                }
                goto fail;
            }
            e->term_keys[at++] = (int)k;
        }
    }

    /* rules: (name, number, program) */
    e->nrules = (int)PyList_GET_SIZE(rules);
    e->rules = PyMem_Calloc((size_t)e->nrules + 1, sizeof(RuleSpec));
    if (e->rules == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (int r = 0; r < e->nrules; r++) {
        PyObject *spec = PyList_GET_ITEM(rules, r);
        if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 3
            || !PyUnicode_CheckExact(PyTuple_GET_ITEM(spec, 0))) {
            PyErr_SetString(PyExc_TypeError, "Engine: a rule is (name, number, program)");
            goto fail;
        }
        e->rules[r].name = Py_NewRef(PyTuple_GET_ITEM(spec, 0));
        e->rules[r].number = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 1));
        if (e->rules[r].number == -1 && PyErr_Occurred()) {
            goto fail;
        }
        if (r > 0 && e->rules[r].number <= e->rules[r - 1].number) {
            /* A match's place among the caller's (match's extra) is by its number. */
            PyErr_SetString(PyExc_ValueError, "Engine: the rules' numbers must ascend");
            goto fail;
        }
        e->rules[r].numobj = Py_NewRef(PyTuple_GET_ITEM(spec, 1));
        int root = compile_node(e, PyTuple_GET_ITEM(spec, 2), 0);
        if (root < 0) {
            goto fail;
        }
        e->rules[r].root = root;
    }

    /* anchors: per key, the rules anchored on it */
    if (PyList_GET_SIZE(anchors) != e->nkeys + e->nfuzzy) {
        PyErr_SetString(PyExc_ValueError, "Engine: one anchor list per key and fuzzy term");
        goto fail;
    }
    e->anchored = PyMem_Calloc((size_t)e->nkeys + (size_t)e->nfuzzy + 1, sizeof(int *));
    if (e->anchored == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (int k = 0; k < e->nkeys + e->nfuzzy; k++) {
        e->anchored[k] = int_list(PyList_GET_ITEM(anchors, k), "Engine: anchors");
        if (e->anchored[k] == NULL) {
            goto fail;
        }
        for (int *p = e->anchored[k]; *p >= 0; p++) {
            if (*p >= e->nrules) {
                PyErr_SetString(PyExc_ValueError, "Engine: an anchored rule is out of range");
                goto fail;
            }
        }
    }
    e->always = int_list(always, "Engine: always");
    if (e->always == NULL) {
        goto fail;
    }
    for (int *p = e->always; *p >= 0; p++) {
        if (*p >= e->nrules) {
            PyErr_SetString(PyExc_ValueError, "Engine: an always rule is out of range");
            goto fail;
        }
    }
    if (scratch_init(&e->scratch, e) < 0) {
        goto fail;
    }
    return (PyObject *)e;
fail:
    Py_DECREF(e);
    return NULL;
}

static void
engine_dealloc(Engine *e)
{
    scratch_free(&e->scratch);
    Py_XDECREF(e->keymap);
    Py_XDECREF(e->learned);
    if (e->seen) {
        for (size_t i = 0; i < ((size_t)1 << SEEN_BITS); i++) {
            Py_XDECREF(e->seen[i].str);
            Py_XDECREF(e->seen[i].verdicts);
        }
        PyMem_Free(e->seen);
    }
    if (e->terms) {
        for (int t = 0; t < e->nterms; t++) {
            Py_XDECREF(e->terms[t].label);
        }
    }
    PyMem_Free(e->terms);
    PyMem_Free(e->term_keys);
    PyMem_Free(e->term_sizes);
    if (e->rules) {
        for (int r = 0; r < e->nrules; r++) {
            Py_XDECREF(e->rules[r].name);
            Py_XDECREF(e->rules[r].numobj);
        }
    }
    PyMem_Free(e->rules);
    PyMem_Free(e->nodes);
    PyMem_Free(e->kids);
    if (e->anchored) {
        for (int k = 0; k < e->nkeys + e->nfuzzy; k++) {
            PyMem_Free(e->anchored[k]);
        }
    }
    PyMem_Free(e->anchored);
    PyMem_Free(e->always);
    PyObject **refs[] = {&e->hit_type, &e->match_type, &e->decision_type, &e->set_dict,
                         &e->set_fields_set, &e->set_extra, &e->set_private, &e->hit_fields,
                         &e->match_fields,
                         &e->field_names, &e->hit_template, &e->exact, &e->alias, &e->sum, &e->round, &e->hundred, &e->s_term, &e->s_field,
                         &e->s_start, &e->s_end, &e->s_text, &e->s_kind, &e->s_score,
                         &e->s_variant, &e->s_rule, &e->s_article_id, &e->s_hits};
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        Py_CLEAR(*refs[i]);
    }
    Py_TYPE(e)->tp_free((PyObject *)e);
}

/* ---------------------------------------------------------------------------------------- */
/* Per article: gathering the keys' tokens */

static inline Py_ssize_t
int_at(PyObject *list, Py_ssize_t i)
{
    /* The lists are FieldText's, made by the tokeniser: ints in range. */
    return PyLong_AsSsize_t(PyList_GET_ITEM(list, i));
}

static inline Py_ssize_t
pos_at(Scratch *s, int r, Py_ssize_t i)
{
    return s->pos[r] == NULL ? i : int_at(s->pos[r], i);
}

static inline Py_ssize_t
last_at(Scratch *s, int r, Py_ssize_t i)
{
    return s->last[r] == NULL ? i : int_at(s->last[r], i);
}

static int
grow(void **p, Py_ssize_t *cap, Py_ssize_t need, size_t size)
{
    if (need <= *cap) {
        return 0;
    }
    Py_ssize_t c = *cap ? *cap : 256;
    while (c < need) {
        c *= 2;
    }
    void *q = PyMem_Realloc(*p, size * (size_t)c);
    if (q == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *p = q;
    *cap = c;
    return 0;
}

static int
set_fields(Engine *e, Scratch *s, PyObject *fields)
{
    if (!PyTuple_Check(fields) || PyTuple_GET_SIZE(fields) != NRANKS) {
        PyErr_Format(PyExc_TypeError, "Engine: fields must be a tuple of %d", NRANKS);
        return -1;
    }
    for (int r = 0; r < NRANKS; r++) {
        PyObject *f = PyTuple_GET_ITEM(fields, r);
        s->keys[r] = s->starts[r] = s->ends[r] = s->pos[r] = s->last[r] = s->text[r] = NULL;
        s->norms[r] = NULL;
        s->ntok[r] = 0;
        if (f == Py_None) {
            if (e->rank_mask & (1 << r)) {
                PyErr_Format(PyExc_ValueError, "Engine: field %d is needed", r);
                return -1;
            }
            continue;
        }
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 7) {
            PyErr_SetString(PyExc_TypeError,
                            "Engine: a field is (keys, starts, ends, pos, last, text, norms)");
            return -1;
        }
        PyObject *keys = PyTuple_GET_ITEM(f, 0), *starts = PyTuple_GET_ITEM(f, 1);
        PyObject *ends = PyTuple_GET_ITEM(f, 2), *pos = PyTuple_GET_ITEM(f, 3);
        PyObject *last = PyTuple_GET_ITEM(f, 4), *text = PyTuple_GET_ITEM(f, 5);
        PyObject *norms = PyTuple_GET_ITEM(f, 6);
        if (!PyList_Check(keys) || !PyList_Check(starts) || !PyList_Check(ends)
            || !PyList_Check(norms)
            || !PyUnicode_Check(text) || (pos != Py_None && !PyList_Check(pos))
            || (last != Py_None && !PyList_Check(last))) {
            PyErr_SetString(PyExc_TypeError, "Engine: bad field lists");
            return -1;
        }
        Py_ssize_t n = PyList_GET_SIZE(keys);
        if (PyList_GET_SIZE(starts) != n || PyList_GET_SIZE(ends) != n
            || (pos != Py_None && PyList_GET_SIZE(pos) != n)
            || (last != Py_None && PyList_GET_SIZE(last) != n)
            || PyList_GET_SIZE(norms) != n) {
            PyErr_SetString(PyExc_ValueError, "Engine: a field's lists differ in length");
            return -1;
        }
        s->keys[r] = keys;
        s->starts[r] = starts;
        s->ends[r] = ends;
        s->pos[r] = pos == Py_None ? NULL : pos;
        s->last[r] = last == Py_None ? NULL : last;
        s->text[r] = text;
        s->norms[r] = norms;
        s->ntok[r] = n;
    }
    return 0;
}

/* Find the tokens of every key of the engine in the fields; queue the rules they anchor. */
static int
push_pair(Scratch *s, int k, int r, Py_ssize_t i, PyObject *kind, double score, unsigned gen)
{
    if (s->npairs == s->cap_pairs
        && grow((void **)&s->pairs, &s->cap_pairs, s->npairs + 1, sizeof(Pair)) < 0) {
        return -1;
    }
    Pair *pr = &s->pairs[s->npairs++];
    pr->key = k;
    pr->rank = r;
    pr->tok = i;
    pr->kind = kind;
    pr->score = score;
    KeyOcc *o = &s->occ[k];
    if (o->gen != gen) {
        o->gen = gen;
        memset(o->count, 0, sizeof(o->count));
        s->touched[s->ntouched++] = k;
    }
    o->count[r]++;
    return 0;
}

/* A token's verdicts: ((fuzzy term, kind, score, whole-word only), ...), the engine's or the
 * call's. */
static int
push_verdicts(Engine *e, Scratch *s, PyObject *verdicts, int r, Py_ssize_t i, unsigned gen)
{
    if (!PyTuple_Check(verdicts)) {
        PyErr_SetString(PyExc_TypeError, "Engine: a token's verdicts must be a tuple");
        return -1;
    }
    for (Py_ssize_t v = 0; v < PyTuple_GET_SIZE(verdicts); v++) {
        PyObject *item = PyTuple_GET_ITEM(verdicts, v);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 4
            || !PyUnicode_Check(PyTuple_GET_ITEM(item, 1))) {
            PyErr_SetString(PyExc_TypeError,
                            "Engine: a verdict is (fuzzy term, kind, score, whole word only)");
            return -1;
        }
        long f = PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
        double score = PyFloat_AsDouble(PyTuple_GET_ITEM(item, 2));
        int whole = PyObject_IsTrue(PyTuple_GET_ITEM(item, 3));
        if (PyErr_Occurred() || whole < 0) {
            return -1;
        }
        if (f < 0 || f >= e->nfuzzy) {
            PyErr_SetString(PyExc_ValueError, "Engine: a verdict's fuzzy term is out of range");
            return -1;
        }
        /* A fuzzy verdict holds for whole words only: a compound is matched through its
         * parts (see Evaluator.resolve). */
        if (whole && pos_at(s, r, i) != last_at(s, r, i)) {
            continue;
        }
        if (push_pair(s, e->nkeys + (int)f, r, i, PyTuple_GET_ITEM(item, 1), score, gen) < 0) {
            return -1;
        }
    }
    return 0;
}

/* 0 when gathered, 1 when some token's key has no verdicts yet (they are in s->unknown and
 * nothing else is gathered), -1 on error. It runs no Python code (the keys are strs, the
 * verdicts plain tuples), so no other thread changes the seen table or the verdicts meanwhile. */
static int
gather(Engine *e, Scratch *s, PyObject *verdicts)
{
    s->gen++;
    if (s->gen == 0) {  /* wrapped: forget every stamp */
        memset(s->occ, 0, sizeof(KeyOcc) * ((size_t)e->nkeys + (size_t)e->nfuzzy + 1));
        memset(s->rule_gen, 0, sizeof(unsigned) * ((size_t)e->nrules + 1));
        if (s->slots != NULL) {
            memset(s->slots, 0, sizeof(HitSlot) * (size_t)s->cap_slots);
        }
        s->gen = 1;
    }
    s->nslots = 0;
    s->nchain = 0;
    unsigned gen = s->gen;
    if (e->seen == NULL) {  /* made on the first article: a rule set may never match one */
        e->seen = PyMem_Calloc((size_t)1 << SEEN_BITS, sizeof(Seen));
        if (e->seen == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    s->ntouched = 0;
    s->npairs = 0;
    s->nunknown = 0;
    PyObject *learned = NULL;
    if (e->nfuzzy > 0) {
        learned = e->learned;
        Py_XSETREF(s->learned, Py_NewRef(learned));
    }
    for (int r = 0; r < NRANKS; r++) {
        if (!(e->rank_mask & (1 << r)) || s->keys[r] == NULL) {
            continue;
        }
        PyObject *keys = s->keys[r];
        Py_ssize_t n = s->ntok[r];
        for (Py_ssize_t i = 0; i < n; i++) {
            /* The seen table is larger than the cache: the str sixteen tokens on, then the
             * way of the one eight on, are asked for ahead (see fetch_ahead). */
            if (i + 16 < n) {
                PREFETCH(PyList_GET_ITEM(keys, i + 16));
            }
            if (i + 8 < n) {
                PyObject *ahead = PyList_GET_ITEM(keys, i + 8);
                if (PyUnicode_CheckExact(ahead) && ((PyASCIIObject *)ahead)->hash != -1) {
                    size_t ha = (size_t)((PyASCIIObject *)ahead)->hash;
                    PREFETCH(&e->seen[ha & (((size_t)1 << SEEN_BITS) - SEEN_WAYS)]);
                }
            }
            PyObject *key = PyList_GET_ITEM(keys, i);
            Py_hash_t h;
            if (PyUnicode_CheckExact(key) && ((PyASCIIObject *)key)->hash != -1) {
                h = ((PyASCIIObject *)key)->hash;
            }
            else {
                h = PyObject_Hash(key);
                if (h == -1) {
                    return -1;
                }
            }
            Seen *ways = &e->seen[(size_t)h & (((size_t)1 << SEEN_BITS) - SEEN_WAYS)];
            Seen *seen = NULL;
            int k;
            for (int w = 0; w < SEEN_WAYS; w++) {
                if (ways[w].str == key) {
                    seen = &ways[w];
                    if (w > 0) {  /* one way nearer the front: the last way is dropped next */
                        Seen t = ways[w - 1];
                        ways[w - 1] = *seen;
                        *seen = t;
                        seen = &ways[w - 1];
                    }
                    break;
                }
            }
            if (seen != NULL) {
                k = seen->key;
            }
            else {
                unsigned b = bloom_bit(h);
                if (!(e->bloom[b >> 3] & (1u << (b & 7)))) {
                    k = -1;
                }
                else {
                    PyObject *num = PyDict_GetItemWithError(e->keymap, key);
                    if (num == NULL && PyErr_Occurred()) {
                        return -1;
                    }
                    k = num == NULL ? -1 : (int)PyLong_AsLong(num);
                }
                if (PyUnicode_CheckExact(key)) {
                    Seen dropped = ways[SEEN_WAYS - 1];
                    memmove(ways + 1, ways, sizeof(Seen) * (SEEN_WAYS - 1));
                    seen = &ways[0];
                    seen->str = Py_NewRef(key);
                    seen->verdicts = NULL;
                    seen->key = k;
                    /* A str, and a tuple Engine.learned holds: freeing runs no Python code. */
                    Py_XDECREF(dropped.str);
                    Py_XDECREF(dropped.verdicts);
                }
            }
            if (k >= 0 && push_pair(s, k, r, i, NULL, 100.0, gen) < 0) {
                return -1;
            }
            if (learned == NULL) {
                continue;
            }
            PyObject *v = seen != NULL ? seen->verdicts : NULL;
            if (v == NULL) {
                v = PyDict_GetItemWithError(learned, key);
                if (v != NULL) {
                    if (seen != NULL) {
                        seen->verdicts = Py_NewRef(v);
                    }
                }
                else if (PyErr_Occurred()) {
                    return -1;
                }
                else if (verdicts != NULL) {
                    v = PyDict_GetItemWithError(verdicts, key);
                    if (v == NULL && PyErr_Occurred()) {
                        return -1;
                    }
                }
                if (v == NULL) {
                    if (s->nunknown == s->cap_unknown
                        && grow((void **)&s->unknown, &s->cap_unknown, s->nunknown + 1,
                                sizeof(PyObject *)) < 0) {
                        return -1;
                    }
                    s->unknown[s->nunknown++] = key;
                    continue;
                }
            }
            /* Most words have none: (), a tuple push_verdicts would only check. */
            if ((!PyTuple_Check(v) || PyTuple_GET_SIZE(v) > 0)
                && push_verdicts(e, s, v, r, i, gen) < 0) {
                return -1;
            }
        }
    }
    if (s->nunknown > 0) {
        return 1;
    }
    /* Lay out each key's tokens, rank by rank, in token order. */
    Py_ssize_t cap = 0, off = 0;
    for (int j = 0; j < s->ntouched; j++) {
        KeyOcc *o = &s->occ[s->touched[j]];
        for (int r = 0; r < NRANKS; r++) {
            o->start[r] = off;
            s->fill[(size_t)s->touched[j] * NRANKS + r] = off;
            off += o->count[r];
        }
    }
    cap = off + 1;
    Py_ssize_t *toks = PyMem_Realloc(s->toks, sizeof(Py_ssize_t) * (size_t)cap);
    if (toks != NULL) {
        s->toks = toks;
    }
    PyObject **kinds = PyMem_Realloc(s->tok_kind, sizeof(PyObject *) * (size_t)cap);
    if (kinds != NULL) {
        s->tok_kind = kinds;
    }
    double *scores = PyMem_Realloc(s->tok_score, sizeof(double) * (size_t)cap);
    if (scores != NULL) {
        s->tok_score = scores;
    }
    if (toks == NULL || kinds == NULL || scores == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t p = 0; p < s->npairs; p++) {
        Pair *pr = &s->pairs[p];
        Py_ssize_t at = s->fill[(size_t)pr->key * NRANKS + (size_t)pr->rank]++;
        toks[at] = pr->tok;
        kinds[at] = pr->kind;
        scores[at] = pr->score;
    }
    /* The rules to try, in rule order. */
    s->nqueue = 0;
    for (int *p = e->always; *p >= 0; p++) {
        s->rule_gen[*p] = gen;
        s->queue[s->nqueue++] = *p;
    }
    for (int j = 0; j < s->ntouched; j++) {
        for (int *p = e->anchored[s->touched[j]]; *p >= 0; p++) {
            if (s->rule_gen[*p] != gen) {
                s->rule_gen[*p] = gen;
                s->queue[s->nqueue++] = *p;
            }
        }
    }
    return 0;
}

static int
cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The queue in rule order. A queue that is a large share of the rules (556 of 10,000 rules an
 * article in the realistic bench) is read back from rule_gen, which marks exactly the queued
 * rules, in one pass over the rules: about four instructions a rule, where sorting cost about
 * 25 a comparison, 2% of matching at 10,000 rules. A short queue is sorted. */
static void
order_queue(Engine *e, Scratch *s)
{
    if ((size_t)s->nqueue * 32 < (size_t)e->nrules) {
        qsort(s->queue, (size_t)s->nqueue, sizeof(int), cmp_int);
        return;
    }
    unsigned gen = s->gen;
    int n = 0;
    for (int r = 0; r < e->nrules; r++) {
        if (s->rule_gen[r] == gen) {
            s->queue[n++] = r;
        }
    }
    s->nqueue = n;
}

/* ---------------------------------------------------------------------------------------- */
/* Evaluation */

/* Each queued rule reads its spec, then its root node, then the node's term, then its keys'
 * tokens: loads each needing the one before. With thousands of rules the queue skips through
 * those arrays, each load missed the cache, and most of a rule's time at 10,000 rules was
 * spent waiting for them one after the other. They are asked for ahead instead, a stage at a
 * time: the rule AHEAD places on, its node and name (a match takes a reference to the name)
 * five places on, its term three, its first two keys' tokens one. Each stage reads what the
 * stage before asked for, a few rules earlier. */
#define AHEAD 8

static inline void
fetch_ahead(Engine *e, Scratch *s, int q)
{
    int n = s->nqueue;
    const int *queue = s->queue;
    if (q + AHEAD < n) {
        PREFETCH(&e->rules[queue[q + AHEAD]]);
    }
    if (q + AHEAD - 3 < n) {
        const RuleSpec *rule = &e->rules[queue[q + AHEAD - 3]];
        PREFETCH(&e->nodes[rule->root]);
        PREFETCH(rule->name);
    }
    if (q + 3 < n) {
        const Node *nd = &e->nodes[e->rules[queue[q + 3]].root];
        if (nd->op == OP_WORD || nd->op == OP_PHRASE || nd->op == OP_FUZZY) {
            PREFETCH(&e->terms[nd->a]);
        }
        else if (nd->n > 0) {
            PREFETCH(&e->nodes[e->kids[nd->first]]);
        }
    }
    if (q + 1 < n) {
        /* A word's own key and the next of its group, or a phrase's first two keys. */
        const Node *nd = &e->nodes[e->rules[queue[q + 1]].root];
        if (nd->op == OP_WORD || nd->op == OP_PHRASE || nd->op == OP_FUZZY) {
            const TermSpec *t = &e->terms[nd->a];
            const int *keys = e->term_keys + t->first;
            PREFETCH(&s->occ[keys[0]]);
            if (t->nkeys > 1) {
                PREFETCH(&s->occ[keys[1]]);
            }
        }
    }
}

static inline Py_ssize_t *
occ_of(Scratch *s, int key, int rank, Py_ssize_t *n)
{
    KeyOcc *o = &s->occ[key];
    if (o->gen != s->gen) {
        *n = 0;
        return NULL;
    }
    *n = o->count[rank];
    return s->toks + o->start[rank];
}

static int
push_raw(Scratch *s, int rank, int term, Py_ssize_t start, Py_ssize_t end, PyObject *kind,
         double score, Py_ssize_t vi, Py_ssize_t vj)
{
    if (s->nraw == s->cap_raw
        && grow((void **)&s->raw, &s->cap_raw, s->nraw + 1, sizeof(Raw)) < 0) {
        return -1;
    }
    Raw *h = &s->raw[s->nraw++];
    h->rank = rank;
    h->term = term;
    h->start = start;
    h->end = end;
    h->kind = kind;
    h->score = score;
    h->vi = vi;
    h->vj = vj;
    h->vc = -1;
    h->vn = 0;
    h->t0 = h->t1 = -1;
    return 0;
}

/* The first and last token of the last raw hit pushed (positions are read only by NEAR). */
static inline void
place(Scratch *s, Py_ssize_t t0, Py_ssize_t t1)
{
    s->raw[s->nraw - 1].t0 = t0;
    s->raw[s->nraw - 1].t1 = t1;
}

/* The last of the ascending token numbers toks[0..n) whose position is p, or -1. */
static Py_ssize_t
last_token_at(Scratch *s, int r, Py_ssize_t *toks, Py_ssize_t n, Py_ssize_t p)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (pos_at(s, r, toks[mid]) <= p) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    if (lo > 0 && pos_at(s, r, toks[lo - 1]) == p) {
        return toks[lo - 1];
    }
    return -1;
}

/* Whether text[a:b] is not empty and all white space, as str.isspace says. */
static int
only_space(PyObject *text, Py_ssize_t a, Py_ssize_t b)
{
    if (a >= b) {
        return 0;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    for (Py_ssize_t i = a; i < b; i++) {
        if (!Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i))) {
            return 0;
        }
    }
    return 1;
}

/* The first of the ascending token numbers toks[0..n) whose position is p, or -1. */
static Py_ssize_t
token_at(Scratch *s, int r, Py_ssize_t *toks, Py_ssize_t n, Py_ssize_t p)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {  /* positions never decrease along the token list */
        Py_ssize_t mid = (lo + hi) / 2;
        if (pos_at(s, r, toks[mid]) < p) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    if (lo < n && pos_at(s, r, toks[lo]) == p) {
        return toks[lo];
    }
    return -1;
}

static int near_pairs(Engine *e, Scratch *s, Py_ssize_t lo, Py_ssize_t mid, Py_ssize_t hi,
                      Py_ssize_t n);

/* 1 if true (its hits appended), 0 if false (nothing appended), -1 on error. */
static int
eval_node(Engine *e, Scratch *s, int at)
{
    Node *nd = &e->nodes[at];
    switch (nd->op) {
    case OP_WORD: {
        TermSpec *t = &e->terms[nd->a];
        const int *keys = e->term_keys + t->first;
        Py_ssize_t before = s->nraw;
        for (int r = 0; r < NRANKS; r++) {
            if (!(nd->mask & (1 << r))) {
                continue;
            }
            for (int w = 0; w < t->nkeys; w++) {
                /* The word's own key is an exact hit; another of its alias group an alias. */
                Py_ssize_t n;
                Py_ssize_t *toks = occ_of(s, keys[w], r, &n);
                for (Py_ssize_t j = 0; j < n; j++) {
                    Py_ssize_t i = toks[j];
                    Py_ssize_t st = int_at(s->starts[r], i), en = int_at(s->ends[r], i);
                    if (push_raw(s, r, nd->a, st, en, w ? e->alias : e->exact, 100.0,
                                 w ? i : -1, -1) < 0) {
                        return -1;
                    }
                    place(s, i, i);
                }
            }
            if (t->left < 0) {
                continue;
            }
            /* The compound written apart: its first word, white space, its second word (not
             * itself a compound) at the next position. */
            Py_ssize_t nl, nr;
            Py_ssize_t *lt = occ_of(s, t->left, r, &nl);
            Py_ssize_t *rt = occ_of(s, t->right, r, &nr);
            if (nl == 0 || nr == 0) {
                continue;
            }
            for (Py_ssize_t a = 0; a < nl; a++) {
                Py_ssize_t i = lt[a];
                Py_ssize_t j = last_token_at(s, r, rt, nr, last_at(s, r, i) + 1);
                if (j < 0 || pos_at(s, r, j) != last_at(s, r, j)) {
                    continue;
                }
                Py_ssize_t en_i = int_at(s->ends[r], i), st_j = int_at(s->starts[r], j);
                if (!only_space(s->text[r], en_i, st_j)) {
                    continue;
                }
                if (push_raw(s, r, nd->a, int_at(s->starts[r], i), int_at(s->ends[r], j),
                             e->exact, 100.0, i, j) < 0) {
                    return -1;
                }
                place(s, i, j);
            }
        }
        return s->nraw > before;
    }
    case OP_FUZZY: {
        /* The tokens some verdict of the call accepted: an exact one hits as a word does,
         * another kind with its score and the token's norm. */
        int key = e->term_keys[e->terms[nd->a].first];
        int found = 0;
        for (int r = 0; r < NRANKS; r++) {
            if (!(nd->mask & (1 << r))) {
                continue;
            }
            Py_ssize_t n;
            Py_ssize_t *toks = occ_of(s, key, r, &n);
            if (n == 0) {
                continue;
            }
            Py_ssize_t base = toks - s->toks;
            for (Py_ssize_t j = 0; j < n; j++) {
                Py_ssize_t i = toks[j];
                PyObject *kind = s->tok_kind[base + j];
                int exact = kind == e->exact || PyUnicode_Compare(kind, e->exact) == 0;
                Py_ssize_t st = int_at(s->starts[r], i), en = int_at(s->ends[r], i);
                if (push_raw(s, r, nd->a, st, en, exact ? e->exact : kind,
                             exact ? 100.0 : s->tok_score[base + j], exact ? -1 : i, -1) < 0) {
                    return -1;
                }
                place(s, i, i);
            }
            found = 1;
        }
        return found;
    }
    case OP_PHRASE: {
        TermSpec *t = &e->terms[nd->a];
        const int *keys = e->term_keys + t->first;
        const int *sizes = t->sizes >= 0 ? e->term_sizes + t->sizes : NULL;
        int nw = t->nwords;
        int found = 0;
        for (int r = 0; r < NRANKS; r++) {
            if (!(nd->mask & (1 << r))) {
                continue;
            }
            /* Every word must occur in the field (by its key or another of its group). */
            int missing = 0;
            for (int w = 0, k = 0; w < nw && !missing; w++) {
                int size = sizes ? sizes[w] : 1;
                Py_ssize_t any = 0;
                for (int g = 0; g < size; g++) {
                    Py_ssize_t nk;
                    occ_of(s, keys[k + g], r, &nk);
                    any += nk;
                }
                missing = any == 0;
                k += size;
            }
            if (missing) {
                continue;
            }
            /* The chain being tried is laid out at the end of the article's chain store: a
             * variant names it there. */
            if (grow((void **)&s->chain, &s->cap_chain, s->nchain + nw, sizeof(Py_ssize_t)) < 0) {
                return -1;
            }
            Py_ssize_t *chain = s->chain + s->nchain;
            int size0 = sizes ? sizes[0] : 1;
            for (int g0 = 0; g0 < size0; g0++) {
                Py_ssize_t n0;
                Py_ssize_t *first = occ_of(s, keys[g0], r, &n0);
                for (Py_ssize_t j = 0; j < n0; j++) {
                    Py_ssize_t cur = first[j];
                    Py_ssize_t st = int_at(s->starts[r], cur), en = int_at(s->ends[r], cur);
                    int alias = g0 > 0;  /* a word found by another key of its group */
                    int whole = 1;
                    chain[0] = cur;
                    for (int w = 1, k = size0; w < nw; w++) {
                        /* The first token at the next position of any of the word's keys, as
                         * Evaluator._any_phrase takes it. */
                        int size = sizes ? sizes[w] : 1;
                        Py_ssize_t p = last_at(s, r, cur) + 1, nxt = -1;
                        int by = 0;
                        for (int g = 0; g < size; g++) {
                            Py_ssize_t nk;
                            Py_ssize_t *toks = occ_of(s, keys[k + g], r, &nk);
                            Py_ssize_t x = nk ? token_at(s, r, toks, nk, p) : -1;
                            if (x >= 0 && (nxt < 0 || x < nxt)) {
                                nxt = x;
                                by = g;
                            }
                        }
                        k += size;
                        if (nxt < 0) {
                            whole = 0;
                            break;
                        }
                        alias |= by > 0;
                        Py_ssize_t a = int_at(s->starts[r], nxt), b = int_at(s->ends[r], nxt);
                        if (a < st) {
                            st = a;
                        }
                        if (b > en) {
                            en = b;
                        }
                        chain[w] = nxt;
                        cur = nxt;
                    }
                    if (!whole) {
                        continue;
                    }
                    if (push_raw(s, r, nd->a, st, en, alias ? e->alias : e->exact, 100.0, -1,
                                 -1) < 0) {
                        return -1;
                    }
                    /* Each word starts after the last position of the one before: the chain's
                     * first token starts it, its last ends it. */
                    place(s, first[j], cur);
                    found = 1;
                    if (alias) {
                        /* The variant: the chain's norms in start order (a stable sort, as
                         * sorted() is); kept for the article, and the next chain goes after. */
                        for (int a = 1; a < nw; a++) {
                            Py_ssize_t x = chain[a], sx = int_at(s->starts[r], x);
                            int b = a;
                            while (b > 0 && int_at(s->starts[r], chain[b - 1]) > sx) {
                                chain[b] = chain[b - 1];
                                b--;
                            }
                            chain[b] = x;
                        }
                        Raw *h = &s->raw[s->nraw - 1];
                        h->vc = s->nchain;
                        h->vn = nw;
                        s->nchain += nw;
                        if (grow((void **)&s->chain, &s->cap_chain, s->nchain + nw,
                                 sizeof(Py_ssize_t)) < 0) {
                            return -1;
                        }
                        chain = s->chain + s->nchain;
                    }
                }
            }
        }
        return found;
    }
    case OP_AND: {
        Py_ssize_t saved = s->nraw;
        for (int j = 0; j < nd->n; j++) {
            int c = e->kids[nd->first + j];
            if (j < nd->a) {
                int v = eval_node(e, s, c);
                if (v <= 0) {
                    s->nraw = saved;
                    return v;
                }
            }
            else {
                /* A NOT child: its inner node must be false. */
                Py_ssize_t before = s->nraw;
                int v = eval_node(e, s, c);
                s->nraw = before;
                if (v != 0) {
                    s->nraw = saved;
                    return v < 0 ? -1 : 0;
                }
            }
        }
        return 1;
    }
    case OP_OR: {
        int any = 0;
        for (int j = 0; j < nd->n; j++) {
            int v = eval_node(e, s, e->kids[nd->first + j]);
            if (v < 0) {
                return -1;
            }
            any |= v;
        }
        return any;
    }
    case OP_NOT: {
        Py_ssize_t before = s->nraw;
        int v = eval_node(e, s, e->kids[nd->first]);
        s->nraw = before;
        return v < 0 ? -1 : !v;
    }
    case OP_NEAR: {
        /* Each side's occurrences are its hits (one each, with the positions it covers). */
        Py_ssize_t before = s->nraw;
        int v = eval_node(e, s, e->kids[nd->first]);
        if (v <= 0) {
            s->nraw = before;
            return v;
        }
        Py_ssize_t mid = s->nraw;
        v = eval_node(e, s, e->kids[nd->first + 1]);
        if (v <= 0) {
            s->nraw = before;
            return v;
        }
        return near_pairs(e, s, before, mid, s->nraw, nd->a);
    }
    }
    PyErr_SetString(PyExc_SystemError, "Engine: bad node");
    return -1;
}

/* A raw hit's variant (a new reference), or None. */
static PyObject *
variant_of(Scratch *s, const Raw *h)
{
    if (h->vn > 0) {
        PyObject *parts = PyList_New(h->vn);
        if (parts == NULL) {
            return NULL;
        }
        for (Py_ssize_t k = 0; k < h->vn; k++) {
            PyList_SET_ITEM(parts, k,
                            Py_NewRef(PyList_GET_ITEM(s->norms[h->rank], s->chain[h->vc + k])));
        }
        PyObject *space = PyUnicode_FromOrdinal(' ');
        PyObject *out = space ? PyUnicode_Join(space, parts) : NULL;
        Py_XDECREF(space);
        Py_DECREF(parts);
        return out;
    }
    if (h->vi < 0) {
        Py_RETURN_NONE;
    }
    PyObject *a = PyList_GET_ITEM(s->norms[h->rank], h->vi);
    if (h->vj < 0) {
        return Py_NewRef(a);
    }
    return PyUnicode_FromFormat("%U %U", a, PyList_GET_ITEM(s->norms[h->rank], h->vj));
}

/* The code point at i of a raw hit's variant (norm_vi, or norm_vi " " norm_vj), or -1 past
 * its end; no variant reads as "". */
static Py_UCS4
variant_char(Scratch *s, const Raw *h, Py_ssize_t i, int *end)
{
    *end = 0;
    if (h->vn > 0) {
        for (Py_ssize_t k = 0; k < h->vn; k++) {
            PyObject *a = PyList_GET_ITEM(s->norms[h->rank], s->chain[h->vc + k]);
            Py_ssize_t na = PyUnicode_GET_LENGTH(a);
            if (i < na) {
                return PyUnicode_READ_CHAR(a, i);
            }
            i -= na;
            if (k + 1 < h->vn) {
                if (i == 0) {
                    return ' ';
                }
                i--;
            }
        }
        *end = 1;
        return 0;
    }
    if (h->vi >= 0) {
        PyObject *a = PyList_GET_ITEM(s->norms[h->rank], h->vi);
        Py_ssize_t na = PyUnicode_GET_LENGTH(a);
        if (i < na) {
            return PyUnicode_READ_CHAR(a, i);
        }
        if (h->vj >= 0) {
            if (i == na) {
                return ' ';
            }
            PyObject *b = PyList_GET_ITEM(s->norms[h->rank], h->vj);
            if (i - na - 1 < PyUnicode_GET_LENGTH(b)) {
                return PyUnicode_READ_CHAR(b, i - na - 1);
            }
        }
    }
    *end = 1;
    return 0;
}

/* Whether two raw hits name their variant alike (then their text is the same). */
static inline int
same_variant(Scratch *s, const Raw *a, const Raw *b)
{
    if (a->vi != b->vi || a->vj != b->vj || a->vn != b->vn) {
        return 0;
    }
    return a->vn == 0 || a->vc == b->vc
           || memcmp(s->chain + a->vc, s->chain + b->vc, sizeof(Py_ssize_t) * (size_t)a->vn) == 0;
}

/* The order of two raw hits' variants' text, as str comparison gives it. */
static int
cmp_variants(Scratch *s, const Raw *a, const Raw *b)
{
    for (Py_ssize_t i = 0;; i++) {
        int ea, eb;
        Py_UCS4 x = variant_char(s, a, i, &ea), y = variant_char(s, b, i, &eb);
        if (ea || eb) {
            return ea && eb ? 0 : (ea ? -1 : 1);
        }
        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
}

/* Sorting hits as Evaluator._build_hits keeps them: by (rank, start, end, term text), and among
 * hits of one term on one span the first by (kind, -score, variant) is the one kept. */
static Engine *sort_engine;
static Scratch *sort_scratch;

static int
cmp_sig(const Raw *a, const Raw *b)
{
    if (a->rank != b->rank) {
        return a->rank < b->rank ? -1 : 1;
    }
    if (a->start != b->start) {
        return a->start < b->start ? -1 : 1;
    }
    if (a->end != b->end) {
        return a->end < b->end ? -1 : 1;
    }
    if (a->term == b->term) {
        return 0;
    }
    PyObject *x = sort_engine->terms[a->term].label, *y = sort_engine->terms[b->term].label;
    if (x == y) {
        return 0;
    }
    return PyUnicode_Compare(x, y);  /* str with str: never an error */
}

static int
cmp_raw(const void *pa, const void *pb)
{
    const Raw *a = pa, *b = pb;
    int c = cmp_sig(a, b);
    if (c != 0) {
        return c;
    }
    if (a->kind != b->kind) {
        int k = PyUnicode_Compare(a->kind, b->kind);
        if (k != 0) {
            return k;
        }
    }
    if (a->score != b->score) {
        return a->score > b->score ? -1 : 1;  /* the better score first */
    }
    if (same_variant(sort_scratch, a, b)) {
        return 0;
    }
    /* Rare: one term twice on one span. Compare the variants' text (None as ""), read in
     * place: the comparator must not allocate, as a collection could run Python code and let
     * another thread's match reset the sort's engine and scratch. */
    c = cmp_variants(sort_scratch, a, b);
    return c;
}

/* NEAR */

typedef struct {
    int rank;
    Py_ssize_t p0, p1, at;
} Place;

static int
cmp_place(const void *pa, const void *pb)
{
    const Place *a = pa, *b = pb;
    if (a->rank != b->rank) {
        return a->rank < b->rank ? -1 : 1;
    }
    if (a->p0 != b->p0) {
        return a->p0 < b->p0 ? -1 : 1;
    }
    return (a->at > b->at) - (a->at < b->at);
}

/* Whether two raw hits are one hit, as Evaluator._near compares its hit tuples. */
static int
same_raw(Engine *e, Scratch *s, const Raw *a, const Raw *b)
{
    if (a->rank != b->rank || a->start != b->start || a->end != b->end || a->score != b->score) {
        return 0;
    }
    if (a->term != b->term) {
        PyObject *x = e->terms[a->term].label, *y = e->terms[b->term].label;
        if (x != y && PyUnicode_Compare(x, y) != 0) {  /* str with str: never an error */
            return 0;
        }
    }
    if (a->kind != b->kind && PyUnicode_Compare(a->kind, b->kind) != 0) {
        return 0;
    }
    int va = a->vi >= 0 || a->vn > 0, vb = b->vi >= 0 || b->vn > 0;
    if (va != vb) {
        return 0;  /* None is no str */
    }
    return !va || same_variant(s, a, b) || cmp_variants(s, a, b) == 0;
}

/* A NEAR/n over the left side's hits raw[lo..mid) and the right's raw[mid..hi): keeps, in
 * order, those of an occurrence within n positions of one of the other side's in its field
 * (the gap between them counted as Evaluator._near does; an occurrence is never near itself,
 * i.e. an equal hit). 1 if any pair is near, else 0 (nothing kept); -1 on error. */
static int
near_pairs(Engine *e, Scratch *s, Py_ssize_t lo, Py_ssize_t mid, Py_ssize_t hi, Py_ssize_t n)
{
    Py_ssize_t nr = hi - mid;
    Place *right = PyMem_Malloc(sizeof(Place) * (size_t)(nr + 1));
    char *keep = PyMem_Calloc((size_t)(hi - lo + 1), 1);
    if (right == NULL || keep == NULL) {
        PyMem_Free(right);
        PyMem_Free(keep);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t longest = 0;
    for (Py_ssize_t k = 0; k < nr; k++) {
        const Raw *h = &s->raw[mid + k];
        right[k].rank = h->rank;
        right[k].p0 = pos_at(s, h->rank, h->t0);
        right[k].p1 = last_at(s, h->rank, h->t1);
        right[k].at = mid + k;
        if (right[k].p1 - right[k].p0 > longest) {
            longest = right[k].p1 - right[k].p0;
        }
    }
    qsort(right, (size_t)nr, sizeof(Place), cmp_place);
    int any = 0;
    for (Py_ssize_t i = lo; i < mid; i++) {
        const Raw *l = &s->raw[i];
        Py_ssize_t l0 = pos_at(s, l->rank, l->t0), l1 = last_at(s, l->rank, l->t1);
        /* A right occurrence near l ends at or after l0 - n, so it starts no earlier than that
         * minus the longest right span. */
        Py_ssize_t from = l0 - n - longest;
        Py_ssize_t a = 0, b = nr;
        while (a < b) {
            Py_ssize_t m = (a + b) / 2;
            if (right[m].rank < l->rank || (right[m].rank == l->rank && right[m].p0 < from)) {
                a = m + 1;
            }
            else {
                b = m;
            }
        }
        for (Py_ssize_t k = a; k < nr && right[k].rank == l->rank && right[k].p0 <= l1 + n;
             k++) {
            Py_ssize_t g1 = right[k].p0 - l1, g2 = l0 - right[k].p1;
            if ((g1 > g2 ? g1 : g2) > n || same_raw(e, s, l, &s->raw[right[k].at])) {
                continue;
            }
            keep[i - lo] = keep[right[k].at - lo] = 1;
            any = 1;
        }
    }
    Py_ssize_t w = lo;
    for (Py_ssize_t i = lo; i < hi; i++) {
        if (keep[i - lo]) {
            s->raw[w++] = s->raw[i];
        }
    }
    s->nraw = w;
    PyMem_Free(right);
    PyMem_Free(keep);
    return any;
}

static int
set_slot(PyObject *descr, PyObject *obj, PyObject *value)
{
    return Py_TYPE(descr)->tp_descr_set(descr, obj, value);
}

/* Sets slot_at from the three slot setters when each is an object member of a type both model
 * types derive from, inside both: a model's slots are then written where the member is, as the
 * descriptor would (after checking the type, each time), rather than through it. */
static void
slot_offsets(Engine *e, PyObject *const *setters)
{
    PyTypeObject *types[2] = {(PyTypeObject *)e->hit_type, (PyTypeObject *)e->match_type};
    Py_ssize_t at[3];
    for (int i = 0; i < 3; i++) {
        e->slot_at[i] = -1;
    }
    for (int i = 0; i < 3; i++) {
        at[i] = object_member_at(setters[i], types, 2);
        if (at[i] < 0) {
            return;
        }
    }
    for (int i = 0; i < 3; i++) {
        e->slot_at[i] = at[i];
    }
}

/* A model of type ``type`` holding ``values`` (a dict, stolen), unvalidated. */
static PyObject *
make_model(Engine *e, PyObject *type, PyObject *values, PyObject *fields)
{
    if (values == NULL) {
        return NULL;
    }
    /* Every model of a kind shares one set of the fields set: pydantic only reads it, and
     * copies it before a copy changes it (model_copy). */
    PyTypeObject *tp = (PyTypeObject *)type;
    PyObject *obj = tp->tp_alloc(tp, 0);
    if (obj != NULL && e->slot_at[0] >= 0) {
        /* Fresh from tp_alloc, every slot is NULL: set each where it is. */
        PyObject **d = _PyObject_GetDictPtr(obj);
        if (d != NULL && *d == NULL) {
            *d = values;  /* stolen */
            char *base = (char *)obj;
            *(PyObject **)(base + e->slot_at[0]) = Py_NewRef(fields);
            *(PyObject **)(base + e->slot_at[1]) = Py_NewRef(Py_None);
            *(PyObject **)(base + e->slot_at[2]) = Py_NewRef(Py_None);
            PyObject_GC_UnTrack(obj);
            if (PyObject_GC_IsTracked(values)) {
                PyObject_GC_UnTrack(values);
            }
            return obj;
        }
    }
    if (obj == NULL || set_slot(e->set_dict, obj, values) < 0
        || set_slot(e->set_fields_set, obj, fields) < 0
        || set_slot(e->set_extra, obj, Py_None) < 0
        || set_slot(e->set_private, obj, Py_None) < 0) {
        Py_XDECREF(obj);
        Py_DECREF(values);
        return NULL;
    }
    Py_DECREF(values);
    /* A model holds only strs, numbers, None and (a Match) a tuple of Hits: nothing that can
     * reach back to it, so it can never be part of a reference cycle. Left out of the cyclic
     * collector, it is not walked by each collection while it lives (the collections a large
     * rule set's hundreds of matches an article set off spent about a tenth of matching time
     * walking them). */
    PyObject_GC_UnTrack(obj);
    if (PyObject_GC_IsTracked(values)) {
        PyObject_GC_UnTrack(values);
    }
    return obj;
}

/* The int ``v``: token t's own from the field's list (starts or ends) when it is that value,
 * as it is for most hits, rather than a new one. */
static PyObject *
span_int(PyObject *list, Py_ssize_t t, Py_ssize_t v)
{
    if (list != NULL && t >= 0 && t < PyList_GET_SIZE(list)) {
        PyObject *o = PyList_GET_ITEM(list, t);
        if (PyLong_CheckExact(o)) {
            Py_ssize_t got = PyLong_AsSsize_t(o);
            if (got == v) {
                return Py_NewRef(o);
            }
            if (got == -1 && PyErr_Occurred()) {
                PyErr_Clear();
            }
        }
    }
    return PyLong_FromSsize_t(v);
}

static PyObject *
new_hit(Engine *e, Scratch *s, const Raw *h)
{
    PyObject *text = PyUnicode_Substring(s->text[h->rank], h->start, h->end);
    PyObject *start = span_int(s->starts[h->rank], h->t0, h->start);
    PyObject *end = span_int(s->ends[h->rank], h->t1, h->end);
    PyObject *variant = variant_of(s, h);
    PyObject *score = h->score == 100.0 ? Py_NewRef(e->hundred) : PyFloat_FromDouble(h->score);
    PyObject *d = PyDict_Copy(e->hit_template);
    if (text == NULL || start == NULL || end == NULL || d == NULL || variant == NULL
        || score == NULL
        || PyDict_SetItem(d, e->s_term, e->terms[h->term].label) < 0
        || PyDict_SetItem(d, e->s_field, PyTuple_GET_ITEM(e->field_names, h->rank)) < 0
        || PyDict_SetItem(d, e->s_start, start) < 0 || PyDict_SetItem(d, e->s_end, end) < 0
        || PyDict_SetItem(d, e->s_text, text) < 0
        || (h->kind != e->exact && PyDict_SetItem(d, e->s_kind, h->kind) < 0)
        || (score != e->hundred && PyDict_SetItem(d, e->s_score, score) < 0)
        || (variant != Py_None && PyDict_SetItem(d, e->s_variant, variant) < 0)) {
        Py_XDECREF(variant);
        Py_XDECREF(score);
        Py_XDECREF(text);
        Py_XDECREF(start);
        Py_XDECREF(end);
        Py_XDECREF(d);
        return NULL;
    }
    Py_DECREF(variant);
    Py_DECREF(score);
    Py_DECREF(text);
    Py_DECREF(start);
    Py_DECREF(end);
    return make_model(e, e->hit_type, d, e->hit_fields);
}

/* The article's Hit for a raw hit: made once per (term, rank, span) and shared. */
static PyObject *
hit_for(Engine *e, Scratch *s, const Raw *h)
{
    if (s->nslots * 2 >= s->cap_slots) {
        Py_ssize_t cap = s->cap_slots ? s->cap_slots * 2 : 1024;
        HitSlot *fresh = PyMem_Calloc((size_t)cap, sizeof(HitSlot));
        if (fresh == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        for (Py_ssize_t i = 0; i < s->cap_slots; i++) {
            HitSlot *o = &s->slots[i];
            if (o->gen != s->gen) {
                continue;
            }
            size_t j = ((size_t)o->term * 1000003u ^ (size_t)o->start * 31u ^ (size_t)o->end
                        ^ (size_t)o->rank << 29) & (size_t)(cap - 1);
            while (fresh[j].gen == s->gen) {
                j = (j + 1) & (size_t)(cap - 1);
            }
            fresh[j] = *o;
        }
        PyMem_Free(s->slots);
        s->slots = fresh;
        s->cap_slots = cap;
    }
    size_t mask = (size_t)(s->cap_slots - 1);
    size_t j = ((size_t)h->term * 1000003u ^ (size_t)h->start * 31u ^ (size_t)h->end
                ^ (size_t)h->rank << 29) & mask;
    while (s->slots[j].gen == s->gen) {
        HitSlot *o = &s->slots[j];
        if (o->term == h->term && o->rank == h->rank && o->start == h->start
            && o->end == h->end && o->kind == h->kind && o->score == h->score && o->vi == h->vi
            && o->vj == h->vj && o->vn == h->vn
            && (o->vn == 0 || o->vc == h->vc
                || memcmp(s->chain + o->vc, s->chain + h->vc,
                          sizeof(Py_ssize_t) * (size_t)o->vn) == 0)) {
            return o->hit;
        }
        j = (j + 1) & mask;
    }
    PyObject *hit = new_hit(e, s, h);
    if (hit == NULL) {
        return NULL;
    }
    if (PyList_Append(s->made, hit) < 0) {
        Py_DECREF(hit);
        return NULL;
    }
    Py_DECREF(hit);  /* s->made holds it */
    HitSlot *o = &s->slots[j];
    o->gen = s->gen;
    o->term = h->term;
    o->rank = h->rank;
    o->start = h->start;
    o->end = h->end;
    o->kind = h->kind;
    o->score = h->score;
    o->vi = h->vi;
    o->vj = h->vj;
    o->vc = h->vc;
    o->vn = h->vn;
    o->hit = hit;
    s->nslots++;
    return hit;
}

/* The rule's Match: its score, and its hits when ``evidence`` (else none: see decide). */
static PyObject *
make_match(Engine *e, Scratch *s, RuleSpec *rule, PyObject *template, PyObject *article_id,
           int evidence)
{
    Py_ssize_t n = s->nraw;
    Raw *raw = s->raw;
    sort_engine = e;
    sort_scratch = s;
    if (n > 1) {
        qsort(raw, (size_t)n, sizeof(Raw), cmp_raw);
    }
    /* One hit per (rank, span, term); the score counts each once. */
    Py_ssize_t kept = 0;
    double score = 0.0;
    int whole = 1;  /* every score 100: the sum is of halves and wholes, exact */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (kept > 0 && cmp_sig(&raw[kept - 1], &raw[i]) == 0) {
            continue;
        }
        raw[kept++] = raw[i];
        score += e->weight[raw[i].rank];
        whole &= raw[i].score == 100.0;
    }
    PyObject *sc = NULL;
    if (whole) {
        sc = PyFloat_FromDouble(score);
    }
    else {
        /* As Evaluator._build_hits: float(round(sum(weight * score / 100.0 ...), 4)), in
         * Python, whose sum may add floats otherwise than a loop here. */
        PyObject *parts = PyList_New(kept);
        if (parts == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < kept; i++) {
            PyObject *x = PyFloat_FromDouble(e->weight[raw[i].rank] * raw[i].score / 100.0);
            if (x == NULL) {
                Py_DECREF(parts);
                return NULL;
            }
            PyList_SET_ITEM(parts, i, x);
        }
        PyObject *total = PyObject_CallOneArg(e->sum, parts);
        Py_DECREF(parts);
        PyObject *four = total ? PyLong_FromLong(4) : NULL;
        PyObject *rounded = four ? PyObject_CallFunctionObjArgs(e->round, total, four, NULL)
                                 : NULL;
        Py_XDECREF(total);
        Py_XDECREF(four);
        if (rounded == NULL) {
            return NULL;
        }
        sc = PyNumber_Float(rounded);
        Py_DECREF(rounded);
    }
    if (sc == NULL) {
        return NULL;
    }
    if (!evidence) {
        /* A Decision: its three slots set where they are, fresh from tp_alloc (each NULL). */
        PyTypeObject *tp = (PyTypeObject *)e->decision_type;
        PyObject *obj = tp->tp_alloc(tp, 0);
        if (obj == NULL) {
            Py_DECREF(sc);
            return NULL;
        }
        char *base = (char *)obj;
        *(PyObject **)(base + e->decision_at[0]) = Py_NewRef(rule->name);
        *(PyObject **)(base + e->decision_at[1]) = Py_NewRef(article_id);
        *(PyObject **)(base + e->decision_at[2]) = sc;  /* stolen */
        /* Two strs and a float: never part of a cycle (see make_model). */
        if (PyObject_GC_IsTracked(obj)) {
            PyObject_GC_UnTrack(obj);
        }
        return obj;
    }
    Py_ssize_t shown = kept < e->max_hits ? kept : e->max_hits;
    PyObject *hits = PyTuple_New(shown);
    if (hits == NULL) {
        Py_DECREF(sc);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < shown; i++) {
        PyObject *hit = hit_for(e, s, &raw[i]);
        if (hit == NULL) {
            Py_DECREF(hits);
            Py_DECREF(sc);
            return NULL;
        }
        PyTuple_SET_ITEM(hits, i, Py_NewRef(hit));
    }
    PyObject_GC_UnTrack(hits);  /* it holds untracked Hits only (see make_model) */
    PyObject *d = PyDict_Copy(template);
    if (d == NULL || PyDict_SetItem(d, e->s_rule, rule->name) < 0
        || PyDict_SetItem(d, e->s_score, sc) < 0 || PyDict_SetItem(d, e->s_hits, hits) < 0) {
        Py_XDECREF(sc);
        Py_XDECREF(d);
        Py_DECREF(hits);
        return NULL;
    }
    Py_DECREF(sc);
    Py_DECREF(hits);
    return make_model(e, e->match_type, d, e->match_fields);
}

static Scratch *
take_scratch(Engine *e, Scratch *spare)
{
    /* Matching calls into Python (allocations may collect garbage), so another thread may
     * enter the same engine meanwhile: it gets scratch space of its own. */
    if (!e->scratch.busy) {
        e->scratch.busy = 1;
        return &e->scratch;
    }
    if (scratch_init(spare, e) < 0) {
        return NULL;
    }
    spare->busy = 1;
    return spare;
}

static void
give_scratch(Engine *e, Scratch *s)
{
    int i;
    for (i = 0; i < NRANKS; i++) {
        s->keys[i] = s->starts[i] = s->ends[i] = s->pos[i] = s->last[i] = s->text[i] = NULL;
        s->norms[i] = NULL;
    }
    Py_CLEAR(s->made);
    Py_CLEAR(s->learned);
    s->nunknown = 0;
    if (s == &e->scratch) {
        s->busy = 0;
    }
    else {
        scratch_free(s);
    }
}

/* The set of the words gather found no verdicts for. */
static PyObject *
unknown_words(Scratch *s)
{
    PyObject *out = PySet_New(NULL);
    if (out == NULL) {
        return NULL;
    }
    /* The keys are the fields' (the caller holds them), so they outlive a collection here. */
    for (Py_ssize_t j = 0; j < s->nunknown; j++) {
        if (PySet_Add(out, s->unknown[j]) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

/* The caller's matches from ``extra`` (see run_rules) whose rule numbers are below ``below``,
 * appended to ``out`` from ``*at`` on; ``*last`` is the number of the last match appended
 * (the caller's or the engine's). 0, or -1 with an exception set (an entry that is not a
 * (rule number, Match) pair, or one out of order). */
static int
take_extra(PyObject *extra, Py_ssize_t *at, Py_ssize_t *last, Py_ssize_t below, PyObject *out)
{
    /* The list is read anew each time: making a Match may run Python code (a collection). */
    while (*at < PyList_GET_SIZE(extra)) {
        PyObject *item = PyList_GET_ITEM(extra, *at);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2
            || !PyLong_CheckExact(PyTuple_GET_ITEM(item, 0))) {
            PyErr_SetString(PyExc_TypeError, "Engine: extra holds (rule number, Match) pairs");
            return -1;
        }
        Py_ssize_t number = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 0));
        if (number == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (number >= below) {
            return 0;
        }
        if (number <= *last) {
            PyErr_SetString(PyExc_ValueError, "Engine: extra's rule numbers must ascend, each "
                                              "once, and differ from the engine's");
            return -1;
        }
        if (PyList_Append(out, PyTuple_GET_ITEM(item, 1)) < 0) {
            return -1;
        }
        *last = number;
        (*at)++;
    }
    return 0;
}

static PyObject *
run_rules(Engine *e, PyObject *const *args, Py_ssize_t nargs, int evidence)
{
    if (nargs < 2 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError,
                        evidence ? "match(fields, article_id[, verdicts[, extra]])"
                                 : "decide(fields, article_id[, verdicts[, extra]])");
        return NULL;
    }
    PyObject *verdicts = nargs >= 3 && args[2] != Py_None ? args[2] : NULL;
    if (verdicts != NULL && !PyDict_Check(verdicts)) {
        PyErr_SetString(PyExc_TypeError, "Engine: verdicts must be a dict");
        return NULL;
    }
    PyObject *extra = nargs == 4 && args[3] != Py_None ? args[3] : NULL;
    if (extra != NULL && !PyList_CheckExact(extra)) {
        PyErr_SetString(PyExc_TypeError,
                        "Engine: extra must be a list of (rule number, Match) pairs");
        return NULL;
    }
    Py_ssize_t extra_at = 0, extra_last = PY_SSIZE_T_MIN;
    if (verdicts != NULL && PyDict_GET_SIZE(verdicts) == 0) {
        verdicts = NULL;
    }
    Scratch spare;
    Scratch *s = take_scratch(e, &spare);
    if (s == NULL) {
        return NULL;
    }
    PyObject *out = NULL, *template = NULL;
    s->made = PyList_New(0);
    if (s->made != NULL) {
        PyObject_GC_UnTrack(s->made);  /* it holds untracked Hits only (see make_model) */
    }
    if (s->made == NULL || set_fields(e, s, args[0]) < 0) {
        goto done;
    }
    int g = gather(e, s, verdicts);
    if (g != 0) {
        out = g > 0 ? unknown_words(s) : NULL;
        goto done;
    }
    order_queue(e, s);
    /* This article's Match values, to copy: its id set once, the dict made whole (a Decision
     * needs none). */
    if (evidence
        && ((template = PyDict_New()) == NULL
            || PyDict_SetItem(template, e->s_rule, Py_None) < 0
            || PyDict_SetItem(template, e->s_article_id, args[1]) < 0
            || PyDict_SetItem(template, e->s_score, Py_None) < 0
            || PyDict_SetItem(template, e->s_hits, Py_None) < 0)) {
        goto done;
    }
    out = PyList_New(0);
    if (out == NULL) {
        goto done;
    }
    for (int q = 0; q < s->nqueue; q++) {
        fetch_ahead(e, s, q);
        RuleSpec *rule = &e->rules[s->queue[q]];
        s->nraw = 0;
        int v = eval_node(e, s, rule->root);
        if (v < 0) {
            Py_CLEAR(out);
            goto done;
        }
        if (v == 0) {
            continue;
        }
        PyObject *m = make_match(e, s, rule, template, args[1], evidence);
        if (m == NULL
            || (extra != NULL
                && take_extra(extra, &extra_at, &extra_last, rule->number, out) < 0)
            || PyList_Append(out, m) < 0) {
            Py_XDECREF(m);
            Py_CLEAR(out);
            goto done;
        }
        Py_DECREF(m);
        extra_last = rule->number;  /* an extra of this number or below is out of order */
    }
    if (extra != NULL && take_extra(extra, &extra_at, &extra_last, PY_SSIZE_T_MAX, out) < 0) {
        Py_CLEAR(out);
    }
done:
    Py_XDECREF(template);
    give_scratch(e, s);
    return out;
}

static PyObject *
engine_match(Engine *e, PyObject *const *args, Py_ssize_t nargs)
{
    return run_rules(e, args, nargs, 1);
}

static PyObject *
engine_decide(Engine *e, PyObject *const *args, Py_ssize_t nargs)
{
    return run_rules(e, args, nargs, 0);
}

static PyObject *
engine_candidates(Engine *e, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1 && nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "candidates(fields[, verdicts])");
        return NULL;
    }
    PyObject *verdicts = nargs == 2 && PyDict_Check(args[1]) && PyDict_GET_SIZE(args[1]) ? args[1]
                                                                                        : NULL;
    Scratch spare;
    Scratch *s = take_scratch(e, &spare);
    if (s == NULL) {
        return NULL;
    }
    PyObject *out = NULL;
    if (set_fields(e, s, args[0]) < 0) {
        goto done;
    }
    int g = gather(e, s, verdicts);
    if (g != 0) {
        out = g > 0 ? unknown_words(s) : NULL;
        goto done;
    }
    order_queue(e, s);
    out = PyList_New(s->nqueue);
    if (out == NULL) {
        goto done;
    }
    for (int q = 0; q < s->nqueue; q++) {
        PyList_SET_ITEM(out, q, Py_NewRef(e->rules[s->queue[q]].numobj));
    }
done:
    give_scratch(e, s);
    return out;
}

/* A word's verdicts as learn takes them: a tuple of (fuzzy term, kind, score, whole word
 * only), checked once here so gather may trust them. */
static int
check_verdicts(Engine *e, PyObject *verdicts)
{
    if (!PyTuple_CheckExact(verdicts)) {
        PyErr_SetString(PyExc_TypeError, "Engine: a word's verdicts must be a tuple");
        return -1;
    }
    for (Py_ssize_t v = 0; v < PyTuple_GET_SIZE(verdicts); v++) {
        PyObject *item = PyTuple_GET_ITEM(verdicts, v);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 4
            || !PyLong_CheckExact(PyTuple_GET_ITEM(item, 0))
            || !PyUnicode_CheckExact(PyTuple_GET_ITEM(item, 1))
            || !PyFloat_CheckExact(PyTuple_GET_ITEM(item, 2))
            || !PyBool_Check(PyTuple_GET_ITEM(item, 3))) {
            PyErr_SetString(PyExc_TypeError,
                            "Engine: a verdict is (fuzzy term, kind, score, whole word only)");
            return -1;
        }
        long f = PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
        if (f == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (f < 0 || f >= e->nfuzzy) {
            PyErr_SetString(PyExc_ValueError, "Engine: a verdict's fuzzy term is out of range");
            return -1;
        }
    }
    return 0;
}

static PyObject *
engine_learn(Engine *e, PyObject *mapping)
{
    if (!PyDict_Check(mapping)) {
        PyErr_SetString(PyExc_TypeError, "learn(mapping): a dict of word -> verdicts");
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *word, *verdicts;
    while (PyDict_Next(mapping, &pos, &word, &verdicts)) {
        if (!PyUnicode_CheckExact(word)) {
            PyErr_SetString(PyExc_TypeError, "Engine: a word must be a str");
            return NULL;
        }
        if (check_verdicts(e, verdicts) < 0) {
            return NULL;
        }
    }
    /* Added, never replaced: a seen entry or a call may hold a word's verdicts already. */
    pos = 0;
    while (PyDict_Next(mapping, &pos, &word, &verdicts)) {
        if (PyDict_SetDefault(e->learned, word, verdicts) == NULL) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
engine_forget(Engine *e, PyObject *Py_UNUSED(ignored))
{
    PyObject *fresh = PyDict_New();
    if (fresh == NULL) {
        return NULL;
    }
    if (e->seen != NULL) {
        for (size_t i = 0; i < ((size_t)1 << SEEN_BITS); i++) {
            Py_CLEAR(e->seen[i].verdicts);
        }
    }
    /* A call under way holds the old dict, and so the verdicts it borrows. */
    Py_SETREF(e->learned, fresh);
    Py_RETURN_NONE;
}

static PyObject *
engine_get_learned(Engine *e, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(PyDict_GET_SIZE(e->learned));
}

static PyObject *
engine_get_rank_mask(Engine *e, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(e->rank_mask);
}

static PyObject *
engine_get_size(Engine *e, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(e->nrules);
}

static PyMethodDef engine_methods[] = {
    {"match", (PyCFunction)(void (*)(void))engine_match, METH_FASTCALL,
     "match(fields, article_id[, verdicts[, extra]]) -> [Match, ...] in rule order, with "
     "extra's (a list of (rule number, Match) in rule order) among them; or the set of the "
     "words with no verdicts yet"},
    {"decide", (PyCFunction)(void (*)(void))engine_decide, METH_FASTCALL,
     "decide(fields, article_id[, verdicts[, extra]]) -> as match, each rule that matches as a "
     "Decision (its rule, the article id and its score; no evidence is built), extra's too"},
    {"candidates", (PyCFunction)(void (*)(void))engine_candidates, METH_FASTCALL,
     "candidates(fields[, verdicts]) -> [rule number, ...]: the rules match would evaluate, or "
     "the set of the words with no verdicts yet"},
    {"learn", (PyCFunction)engine_learn, METH_O,
     "learn(mapping): keep each word's fuzzy verdicts (a word's first ones stay)"},
    {"forget", (PyCFunction)engine_forget, METH_NOARGS, "forget(): drop every word's verdicts"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef engine_getset[] = {
    {"rank_mask", (getter)engine_get_rank_mask, NULL, "the field ranks some rule reads", NULL},
    {"size", (getter)engine_get_size, NULL, "the number of rules", NULL},
    {"learned", (getter)engine_get_learned, NULL, "the number of words with verdicts", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "watchers.rules._cmatch.Engine",
    .tp_basicsize = sizeof(Engine),
    .tp_dealloc = (destructor)engine_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Engine(keys, terms, rules, anchors, always, models): see the module docstring.",
    .tp_methods = engine_methods,
    .tp_getset = engine_getset,
    .tp_new = engine_new,
};

static int
cmatch_exec(PyObject *module)
{
    if (PyType_Ready(&EngineType) < 0) {
        return -1;
    }
    Py_INCREF(&EngineType);
    if (PyModule_AddObject(module, "Engine", (PyObject *)&EngineType) < 0) {
        Py_DECREF(&EngineType);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot cmatch_slots[] = {
    {Py_mod_exec, cmatch_exec},
    {0, NULL},
};

static struct PyModuleDef cmatch_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "watchers.rules._cmatch",
    .m_doc = "Word, phrase and boolean rules decided and evidenced in C.",
    .m_size = 0,
    .m_slots = cmatch_slots,
};

PyMODINIT_FUNC
PyInit__cmatch(void)
{
    return PyModuleDef_Init(&cmatch_module);
}
