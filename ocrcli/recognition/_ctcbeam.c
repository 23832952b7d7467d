/* CTC prefix beam search with a character n-gram language model, in C.
 *
 * The same search as search_python in decode.py (same operations in the same order, so the same
 * text), many times faster. The language model is ocrcli.recognition.lm.CharLM: its count tables
 * are read once into a hash table (compile_lm), and each log P(char | context) the search needs
 * is computed from them as the element of CharLM._dist's distribution it would read.
 *
 * Characters are the LM's positions (0..vocabulary-1, shared with CharLM._index, which compile_lm
 * extends with the characters it meets), and BOS, which only pads contexts, is 255; a context of up
 * to 7 characters is packed in a 64-bit key, 8 bits per character, newest in the lowest byte.
 * Models with more than 255 characters or an order above 8 are left to the Python search
 * (compile_lm raises ValueError).
 *
 * A lexicon (compile_lexicon; ocrcli.recognition.lm.Lexicon) adds one more term: every word (a run
 * of letters, case-folded) that is not in it costs the LM's oov penalty once, as soon as the word
 * stops being the beginning of any lexicon word, or at its end if it is such a beginning but no
 * word itself. Its words and their beginnings are kept as 64-bit FNV-1a hashes of their code points.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NEG (-1e30)
#define DEAD (NEG / 2)
#define CAPSULE_NAME "ocrcli.charlm"
#define BOS_CODE 255

/* ---------------------------------------------------------------- language model tables */

typedef struct {
    uint64_t key;  /* (context length + 1) << 56 | packed characters; 0: an empty slot */
    int32_t entry; /* the context's index in the entry arrays */
} Slot;

typedef struct {
    Slot *slots;
    uint64_t mask; /* capacity - 1 (a power of two) */
} Table;

typedef struct {
    uint64_t chars; /* tag(context length, characters) */
    int32_t c1; /* the character + 1; 0: an empty entry */
    double value;
} Memo;

#define MEMO_SIZE 65536 /* entries (1.5 MB) */
/* Searches that run at the same time (decode releases the GIL) each use a memo of their own: an
 * LM keeps up to MEMO_SLOTS, handed out and back while the GIL is held; a search that finds them
 * all in use gets a fresh one for its call. */
#define MEMO_SLOTS 4

typedef struct {
    int order, vocabulary;
    double discount, floor; /* floor: log(1 / vocabulary), the uniform distribution below every context */
    Table table;            /* context -> entry */
    int32_t *start, *count; /* entry -> its followers in foll_pos / foll_count (sorted by position) */
    double *total, *share, *log_share;
    int32_t n_entries;
    uint8_t *foll_pos;
    double *foll_count;
    size_t n_foll;
    Memo *memos[MEMO_SLOTS]; /* recent answers of lm_logp, one table per concurrent search */
    int busy[MEMO_SLOTS];    /* read and written with the GIL held */
} LM;

static uint64_t tag(int len, uint64_t chars) { return ((uint64_t)(len + 1) << 56) | chars; }

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t mask_of(int len) { return len >= 8 ? ~0ULL : ((1ULL << (8 * len)) - 1); }

static int find_entry(const LM *lm, int len, uint64_t chars) {
    uint64_t key = tag(len, chars), i = mix(key) & lm->table.mask;
    while (lm->table.slots[i].key != 0) {
        if (lm->table.slots[i].key == key) return lm->table.slots[i].entry;
        i = (i + 1) & lm->table.mask;
    }
    return -1;
}

static void lm_free(LM *lm) {
    if (!lm) return;
    free(lm->table.slots); free(lm->start); free(lm->count); free(lm->total); free(lm->share);
    free(lm->log_share); free(lm->foll_pos); free(lm->foll_count);
    for (int i = 0; i < MEMO_SLOTS; i++) free(lm->memos[i]);
    free(lm);
}

static void capsule_free(PyObject *capsule) { lm_free(PyCapsule_GetPointer(capsule, CAPSULE_NAME)); }

/* log P(c | the last len characters of chars): element c of CharLM._dist, computed with the same
 * operations (each element of a distribution depends only on the same element of the shorter
 * context's), so equal to the double the Python search reads. Answers are kept in a direct-mapped
 * memo keyed by (context, c) at every context length: beams share their last characters, and the
 * shorter contexts a longer one falls back on are shared more widely still. */
static double lm_logp(const LM *lm, Memo *memo, int len, uint64_t chars, int c) {
    uint64_t key = tag(len, chars);
    Memo *m = &memo[(mix(key) + (uint64_t)c) & (MEMO_SIZE - 1)]; /* one context's answers side by side */
    if (m->c1 == c + 1 && m->chars == key) return m->value;
    double value;
    int e = find_entry(lm, len, chars);
    if (e < 0) { /* an unseen context is its shorter context (contexts are suffix-closed: a seen one's are seen) */
        value = len > 0 ? lm_logp(lm, memo, len - 1, chars & mask_of(len - 1), c) : lm->floor;
    } else {
        double parent = len > 0 ? lm_logp(lm, memo, len - 1, chars & mask_of(len - 1), c) : lm->floor;
        const uint8_t *pos = lm->foll_pos + lm->start[e];
        int lo = 0, hi = lm->count[e] - 1, found = -1;
        while (lo <= hi) { /* followers are sorted by position */
            int mid = (lo + hi) / 2;
            if (pos[mid] == c) { found = mid; break; }
            if (pos[mid] < c) lo = mid + 1; else hi = mid - 1;
        }
        if (found >= 0) {
            double own = lm->foll_count[lm->start[e] + found] - lm->discount;
            value = log(exp(parent) * lm->share[e] + (own > 0.0 ? own : 0.0) / lm->total[e]);
        } else {
            value = parent + lm->log_share[e];
        }
    }
    m->chars = key; /* written after the calls above, which may have used the same slot */
    m->c1 = c + 1;
    m->value = value;
    return value;
}

/* A memo for one search (GIL held): a free one of the LM's, or a new one (slot -1) when all are in use. */
static Memo *claim_memo(LM *lm, int *slot) {
    for (int i = 0; i < MEMO_SLOTS; i++) {
        if (lm->busy[i]) continue;
        if (!lm->memos[i] && !(lm->memos[i] = calloc(MEMO_SIZE, sizeof(Memo)))) return NULL;
        lm->busy[i] = 1;
        *slot = i;
        return lm->memos[i];
    }
    *slot = -1;
    return calloc(MEMO_SIZE, sizeof(Memo));
}

static void release_memo(LM *lm, Memo *memo, int slot) { /* GIL held */
    if (slot >= 0) lm->busy[slot] = 0;
    else free(memo);
}

/* ---------------------------------------------------------------- lexicon */

#define LEXICON_CAPSULE "ocrcli.lexicon"
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

typedef struct {
    uint64_t *keys; /* hash of a word or of the beginning of one (never 0); 0: an empty slot */
    uint8_t *is_word;
    uint64_t mask;
    Py_ssize_t used;
} Lexicon;

static uint64_t fnv_step(uint64_t h, uint32_t c) { return (h ^ (uint64_t)c) * FNV_PRIME; }

static void lexicon_free(Lexicon *lex) {
    if (!lex) return;
    free(lex->keys); free(lex->is_word); free(lex);
}

static void lexicon_capsule_free(PyObject *capsule) { lexicon_free(PyCapsule_GetPointer(capsule, LEXICON_CAPSULE)); }

/* 0: not the beginning of any word; 1: the beginning of one, not a word; 2: a word. */
static int lexicon_find(const Lexicon *lex, uint64_t h) {
    if (h == 0) h = 1;
    for (uint64_t i = mix(h) & lex->mask; lex->keys[i] != 0; i = (i + 1) & lex->mask)
        if (lex->keys[i] == h) return lex->is_word[i] ? 2 : 1;
    return 0;
}

static int lexicon_resize(Lexicon *lex, uint64_t capacity) {
    uint64_t *keys = calloc(capacity, sizeof(uint64_t));
    uint8_t *is_word = calloc(capacity, 1);
    if (!keys || !is_word) { free(keys); free(is_word); return 0; }
    for (uint64_t j = 0; lex->keys && j <= lex->mask; j++) {
        if (lex->keys[j] == 0) continue;
        uint64_t i = mix(lex->keys[j]) & (capacity - 1);
        while (keys[i] != 0) i = (i + 1) & (capacity - 1);
        keys[i] = lex->keys[j];
        is_word[i] = lex->is_word[j];
    }
    free(lex->keys); free(lex->is_word);
    lex->keys = keys; lex->is_word = is_word; lex->mask = capacity - 1;
    return 1;
}

static int lexicon_add(Lexicon *lex, uint64_t h, int is_word) {
    if (h == 0) h = 1;
    if ((uint64_t)(lex->used + 1) * 2 > lex->mask + 1 && !lexicon_resize(lex, 2 * (lex->mask + 1))) return 0;
    uint64_t i = mix(h) & lex->mask;
    while (lex->keys[i] != 0 && lex->keys[i] != h) i = (i + 1) & lex->mask;
    if (lex->keys[i] == 0) { lex->keys[i] = h; lex->used++; }
    if (is_word) lex->is_word[i] = 1;
    return 1;
}

/* compile_lexicon(words) -> capsule. words: one string, a case-folded word a line. */
static PyObject *compile_lexicon(PyObject *self, PyObject *args) {
    PyObject *words;
    if (!PyArg_ParseTuple(args, "U", &words)) return NULL;
    Py_UCS4 *text = PyUnicode_AsUCS4Copy(words);
    if (!text) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(words);
    Lexicon *lex = calloc(1, sizeof(Lexicon));
    if (!lex || !lexicon_resize(lex, 1024)) goto nomem;
    uint64_t h = FNV_OFFSET;
    Py_ssize_t len = 0;
    for (Py_ssize_t i = 0; i <= n; i++) {
        if (i == n || text[i] == '\n') {
            if (len > 0 && !lexicon_add(lex, h, 1)) goto nomem;
            h = FNV_OFFSET;
            len = 0;
            continue;
        }
        if (len > 0 && !lexicon_add(lex, h, 0)) goto nomem; /* the beginning before this character */
        h = fnv_step(h, (uint32_t)text[i]);
        len++;
    }
    PyMem_Free(text);
    PyObject *capsule = PyCapsule_New(lex, LEXICON_CAPSULE, lexicon_capsule_free);
    if (!capsule) lexicon_free(lex);
    return capsule;
nomem:
    PyMem_Free(text);
    lexicon_free(lex);
    return PyErr_NoMemory();
}

/* Position of one character: from index (a dict char -> int, CharLM._index), added if new. */
static int position_of(PyObject *index, Py_UCS4 ch, int vocabulary) {
    PyObject *key = PyUnicode_FromOrdinal((int)ch);
    if (!key) return -1;
    PyObject *value = PyDict_GetItemWithError(index, key);
    long pos;
    if (value) {
        pos = PyLong_AsLong(value);
    } else if (PyErr_Occurred()) {
        Py_DECREF(key);
        return -1;
    } else {
        pos = (long)PyDict_Size(index);
        if (pos >= vocabulary) {
            Py_DECREF(key);
            PyErr_Format(PyExc_ValueError, "more distinct characters than the model's vocabulary (%d)", vocabulary);
            return -1;
        }
        PyObject *number = PyLong_FromLong(pos);
        if (!number || PyDict_SetItem(index, key, number) < 0) {
            Py_XDECREF(number);
            Py_DECREF(key);
            return -1;
        }
        Py_DECREF(number);
    }
    Py_DECREF(key);
    if (pos < 0 || pos >= BOS_CODE) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "character positions above 254 are left to the Python search");
        return -1;
    }
    return (int)pos;
}

/* Positions of characters, looked up in CharLM._index once per distinct character. */
typedef struct {
    PyObject *index;
    int vocabulary;
    int16_t fast[65536]; /* code point -> position + 1 (0: not looked up yet); the others: index */
} Positions;

static int position(Positions *p, Py_UCS4 ch) {
    if (ch < 65536 && p->fast[ch]) return p->fast[ch] - 1;
    int pos = position_of(p->index, ch, p->vocabulary);
    if (pos >= 0 && ch < 65536) p->fast[ch] = (int16_t)(pos + 1);
    return pos;
}

/* compile_lm(levels, index, vocabulary, discount, order, bos) -> capsule. levels: CharLM.packed, one
 * string per context length n, a line per context: "<n characters>\t<followers>\t<counts>". */
static PyObject *compile_lm(PyObject *self, PyObject *args) {
    PyObject *levels, *index;
    int vocabulary, order;
    double discount;
    Py_UCS4 bos;
    if (!PyArg_ParseTuple(args, "O!O!idiC", &PyList_Type, &levels, &PyDict_Type, &index, &vocabulary, &discount, &order, &bos))
        return NULL;
    if (order < 1 || order > 8 || vocabulary < 1 || vocabulary > BOS_CODE || PyList_GET_SIZE(levels) != order) {
        PyErr_SetString(PyExc_ValueError, "orders above 8 and vocabularies above 255 are left to the Python search");
        return NULL;
    }
    size_t contexts = 0, foll_cap = 16;
    for (int n = 0; n < order; n++) {
        PyObject *level = PyList_GET_ITEM(levels, n);
        if (!PyUnicode_Check(level)) {
            PyErr_SetString(PyExc_TypeError, "the count tables must be strings (CharLM.packed)");
            return NULL;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(level);
        int kind = PyUnicode_KIND(level);
        const void *data = PyUnicode_DATA(level);
        if (len > 0) contexts++;
        for (Py_ssize_t i = 0; i < len; i++) if (PyUnicode_READ(kind, data, i) == '\n') contexts++;
        foll_cap += (size_t)len; /* more than the followers of the level */
    }
    LM *lm = calloc(1, sizeof(LM));
    Positions *positions = calloc(1, sizeof(Positions));
    if (!lm || !positions) { free(lm); free(positions); return PyErr_NoMemory(); }
    positions->index = index;
    positions->vocabulary = vocabulary;
    lm->order = order;
    lm->vocabulary = vocabulary;
    lm->discount = discount;
    lm->floor = -log((double)vocabulary);
    size_t cap = 1024;
    while (2 * cap < 3 * contexts) cap <<= 1; /* at most two thirds full */
    lm->table.slots = calloc(cap, sizeof(Slot));
    lm->table.mask = cap - 1;
    lm->start = malloc(sizeof(int32_t) * (contexts + 1));
    lm->count = malloc(sizeof(int32_t) * (contexts + 1));
    lm->total = malloc(sizeof(double) * (contexts + 1));
    lm->share = malloc(sizeof(double) * (contexts + 1));
    lm->log_share = malloc(sizeof(double) * (contexts + 1));
    lm->foll_pos = malloc(foll_cap);
    lm->foll_count = malloc(foll_cap * sizeof(double));
    lm->memos[0] = calloc(MEMO_SIZE, sizeof(Memo));
    if (!lm->memos[0] || !lm->table.slots || !lm->start || !lm->count || !lm->total || !lm->share || !lm->log_share || !lm->foll_pos || !lm->foll_count) {
        PyErr_NoMemory();
        goto fail;
    }
    for (int n = 0; n < order; n++) {
        PyObject *level = PyList_GET_ITEM(levels, n);
        Py_ssize_t len = PyUnicode_GET_LENGTH(level), k = 0;
        int kind = PyUnicode_KIND(level);
        const void *data = PyUnicode_DATA(level);
        while (k < len) { /* one line: a context */
            Py_ssize_t line = k;
            uint64_t chars = 0;
            for (int i = 0; i < n; i++, k++) { /* oldest first: the newest ends in the lowest byte */
                Py_UCS4 ch = k < len ? PyUnicode_READ(kind, data, k) : '\n';
                int pos = ch == bos ? BOS_CODE : (ch == '\n' || ch == '\t') ? -2 : position(positions, ch);
                if (pos == -2) break;
                if (pos < 0) goto fail;
                chars = (chars << 8) | (uint64_t)pos;
            }
            if (k - line != n || k >= len || PyUnicode_READ(kind, data, k) != '\t') goto damaged;
            k++;
            uint8_t *pos = lm->foll_pos + lm->n_foll;
            double *cnt = lm->foll_count + lm->n_foll;
            int32_t tab = 0;
            for (; k < len; k++) {
                Py_UCS4 ch = PyUnicode_READ(kind, data, k);
                if (ch == '\t' || ch == '\n') break;
                int p = position(positions, ch);
                if (p < 0) goto fail;
                pos[tab++] = (uint8_t)p;
            }
            if (tab == 0 || k >= len || PyUnicode_READ(kind, data, k) != '\t') goto damaged;
            k++;
            int32_t found = 0; /* the counts: comma-separated whole numbers, one per follower */
            while (found < tab) {
                double value = 0.0;
                int digits = 0;
                while (k < len) {
                    Py_UCS4 ch = PyUnicode_READ(kind, data, k);
                    if (ch < '0' || ch > '9') break;
                    value = value * 10.0 + (double)(ch - '0');
                    digits++;
                    k++;
                }
                if (!digits) goto damaged;
                cnt[found++] = value;
                if (k < len && PyUnicode_READ(kind, data, k) == ',' && found < tab) k++;
                else break;
            }
            if (found != tab || (k < len && PyUnicode_READ(kind, data, k) != '\n')) goto damaged;
            k++; /* past the newline */
            int32_t e = lm->n_entries++;
            double total = 0.0;
            for (int32_t i = 0; i < tab; i++) total += cnt[i]; /* in the file's order, as Python sums */
            lm->start[e] = (int32_t)lm->n_foll;
            lm->count[e] = tab;
            lm->total[e] = total;
            lm->share[e] = discount * (double)tab / total;
            lm->log_share[e] = log(lm->share[e]);
            for (int32_t i = 1; i < tab; i++) { /* sort by position, for lm_logp's binary search */
                uint8_t p = pos[i];
                double c = cnt[i];
                int32_t j = i;
                for (; j > 0 && pos[j - 1] > p; j--) { pos[j] = pos[j - 1]; cnt[j] = cnt[j - 1]; }
                pos[j] = p;
                cnt[j] = c;
            }
            lm->n_foll += (size_t)tab;
            uint64_t key = tag(n, chars), i = mix(key) & lm->table.mask;
            while (lm->table.slots[i].key != 0) i = (i + 1) & lm->table.mask;
            lm->table.slots[i].key = key;
            lm->table.slots[i].entry = e;
            continue;
        damaged:
            PyErr_Format(PyExc_ValueError, "damaged language model: a line of the %d-character contexts, at character %zd", n, line);
            goto fail;
        }
    }
    free(positions);
    return PyCapsule_New(lm, CAPSULE_NAME, capsule_free);
fail:
    free(positions);
    lm_free(lm);
    return NULL;
}

/* ---------------------------------------------------------------- beam search */

typedef struct { /* a prefix: a node of the tree of texts the search has written */
    int parent, label, first_frame;
    int child, sibling; /* first child, next sibling (-1: none) */
    uint64_t context;   /* its last order-1 LM positions (with BOS padding) */
    double lm_score;
    int slot;           /* index in the `following` list of this frame, -1 if not there */
    uint64_t word;      /* with a lexicon: the hash of the word the text ends in (its letters so far) */
    int word_len;       /* that word's letters (0: the text does not end in a letter) */
    int word_oov;       /* that word is already known not to be in the lexicon (and was charged) */
} Prefix;

typedef struct { /* the lexicon term of a search; lexicon NULL: none */
    const Lexicon *lexicon;
    const uint32_t *fold; /* class -> its case-folded letter, 0 for a class that is not a letter */
    double oov;
} Words;

/* The oov charge for a prefix's word at a word's end (a non-letter or the end of the line). */
static double word_end(const Words *w, const Prefix *p) {
    if (!w->lexicon || p->word_len == 0 || p->word_oov) return 0.0;
    return lexicon_find(w->lexicon, p->word) == 2 ? 0.0 : w->oov;
}

typedef struct { int prefix; double b, nb; double score; } Beam;

typedef struct {
    Prefix *nodes; int n_nodes, cap_nodes;
    Beam *beams, *next; int n_beams, n_next, cap_beams;
    const Py_UCS4 *codes; /* the classes' characters (class k: codes[k - 1]) */
} Search;

/* log(e^a + e^b). Where the smaller term is below e^-746 of the larger, exp() underflows to 0 and
 * the sum is the larger one exactly: returned without calling exp, whose underflow path (errno,
 * a NEG operand) is slow. */
static double lse(double a, double b) {
    double d = a >= b ? b - a : a - b;
    if (d < -746.0) return a >= b ? a : b;
    return a >= b ? a + log1p(exp(d)) : b + log1p(exp(d));
}

static int new_prefix(Search *s, int parent, int label, uint64_t context, double lm_score, int frame) {
    if (s->n_nodes == s->cap_nodes) {
        int cap = s->cap_nodes ? 2 * s->cap_nodes : 1024;
        Prefix *p = realloc(s->nodes, (size_t)cap * sizeof(Prefix));
        if (!p) return -1;
        s->nodes = p;
        s->cap_nodes = cap;
    }
    Prefix *p = &s->nodes[s->n_nodes];
    p->parent = parent; p->label = label; p->first_frame = frame;
    p->child = -1; p->sibling = -1; p->context = context; p->lm_score = lm_score;
    p->slot = -1;
    p->word = 0; p->word_len = 0; p->word_oov = 0;
    if (parent >= 0) {
        p->sibling = s->nodes[parent].child;
        s->nodes[parent].child = s->n_nodes;
    }
    return s->n_nodes++;
}

static int grow_beams(Search *s, int need) {
    if (need <= s->cap_beams) return 1;
    int cap = s->cap_beams ? s->cap_beams : 64;
    while (cap < need) cap *= 2;
    Beam *a = realloc(s->beams, (size_t)cap * sizeof(Beam));
    if (a) s->beams = a;
    Beam *b = realloc(s->next, (size_t)cap * sizeof(Beam));
    if (b) s->next = b;
    if (!a || !b) return 0;
    s->cap_beams = cap;
    return 1;
}

/* log-add v into one of prefix's two scores in the next beams (decode.py's `add`); paths that
 * died (a repeat after a beam with no blank-ending path: NEG plus a little) are left out. */
static int add(Search *s, int prefix, int which, double v) {
    if (v <= DEAD) return 1;
    Prefix *p = &s->nodes[prefix];
    if (p->slot < 0) {
        if (!grow_beams(s, s->n_next + 1)) return 0;
        p->slot = s->n_next;
        Beam *e = &s->next[s->n_next++];
        e->prefix = prefix;
        e->b = which == 0 ? v : NEG;
        e->nb = which == 0 ? NEG : v;
        return 1;
    }
    Beam *e = &s->next[p->slot];
    double *a = which == 0 ? &e->b : &e->nb;
    *a = lse(*a, v);
    return 1;
}

/* Python orders tied scores by the prefix texts (heapq.nlargest on (score, text)): compare texts.
 * Ties are rare: scores are sums of many log-probabilities. */
static int compare_texts(const Search *s, int a, int b) {
    const Prefix *nodes = s->nodes;
    int la = 0, lb = 0;
    for (int p = a; p > 0; p = nodes[p].parent) la++;
    for (int p = b; p > 0; p = nodes[p].parent) lb++;
    /* walk the longer one up to the same length: then both climb together, and the last
     * difference met while climbing is the first one of the texts */
    int pa = a, pb = b, result = la < lb ? -1 : la > lb ? 1 : 0;
    for (int n = la; n > lb; n--) pa = nodes[pa].parent;
    for (int n = lb; n > la; n--) pb = nodes[pb].parent;
    while (pa != pb) {
        Py_UCS4 ca = s->codes[nodes[pa].label - 1], cb = s->codes[nodes[pb].label - 1];
        if (ca != cb) result = ca < cb ? -1 : 1;
        pa = nodes[pa].parent;
        pb = nodes[pb].parent;
    }
    return result;
}

static int better(const Search *s, const Beam *a, const Beam *b) { /* a before b: higher score; ties: larger text */
    if (a->prefix == b->prefix) return 0;
    if (a->score != b->score) return a->score > b->score;
    return compare_texts(s, a->prefix, b->prefix) > 0;
}

/* Keep the best `width` of the next beams, best first (heapq.nlargest's order). `better` is a
 * strict total order (no two beams share a text), so the best `width` and their order are unique:
 * a quickselect brings them to the front, then an insertion sort orders them. */
static void keep_best(Search *s, int width) {
    Beam *a = s->next;
    int lo = 0, hi = s->n_next - 1;
    while (lo < hi) { /* Hoare partition around the middle beam until a[width - 1] is in place */
        Beam pivot = a[lo + (hi - lo) / 2], tmp;
        int i = lo, j = hi;
        while (i <= j) {
            while (better(s, &a[i], &pivot)) i++;
            while (better(s, &pivot, &a[j])) j--;
            if (i <= j) { tmp = a[i]; a[i] = a[j]; a[j] = tmp; i++; j--; }
        }
        if (width - 1 <= j) hi = j;
        else if (width - 1 >= i) lo = i;
        else break;
    }
    for (int i = 1; i < width; i++) {
        Beam b = a[i];
        int j = i;
        for (; j > 0 && better(s, &b, &a[j - 1]); j--) a[j] = a[j - 1];
        a[j] = b;
    }
    s->n_next = width;
}

/* The search itself, over frames x classes log-probabilities lp: the best text's last prefix in
 * *best (-1 when memory ran out) and its score in *best_score. Touches no Python object, so it runs
 * without the GIL. */
static void search(Search *s, const LM *lm, Memo *memo, const float *lp, int frames, int classes,
                   const int *positions, int *cand, const double *cum, double alpha, double beta,
                   int width, double prune, int eos, const Words *words, int *best, double *best_score) {
    *best = -1;
    int ctx_len = lm->order - 1;
    uint64_t ctx_mask = mask_of(ctx_len), bos_context = 0;
    /* this frame's candidate classes; class -> its index in cand + 1 (0: not one); a prefix's child per candidate */
    int *cand_of = cand + classes, *child_of = cand + 2 * classes;
    for (int i = 0; i < ctx_len; i++) bos_context = (bos_context << 8) | (uint64_t)BOS_CODE; /* BOS padding */
    bos_context &= ctx_mask;
    if (new_prefix(s, -1, 0, bos_context, 0.0, 0) < 0 || !grow_beams(s, width + 1)) return;
    s->beams[0] = (Beam){0, 0.0, NEG, 0.0};
    s->n_beams = 1;
    int t = 0;
    while (t < frames) {
        const float *row = lp + (size_t)t * classes;
        int n_cand = 0;
        for (int k = 1; k < classes; k++) if (row[k] > (float)prune) cand[n_cand++] = k;
        for (int c = 0; c < n_cand; c++) cand_of[cand[c]] = c + 1;
        if (n_cand == 0) { /* a run of frames where only the blank passes: one step */
            int end = t + 1;
            while (end < frames) {
                const float *r = lp + (size_t)end * classes;
                int any = 0;
                for (int k = 1; k < classes && !any; k++) any = r[k] > (float)prune;
                if (any) break;
                end++;
            }
            double blank = cum[end] - cum[t];
            for (int i = 0; i < s->n_beams; i++) {
                s->beams[i].b = lse(s->beams[i].b, s->beams[i].nb) + blank;
                s->beams[i].nb = NEG;
            }
            t = end;
            continue;
        }
        int has_blank = row[0] > (float)prune;
        double p_blank = (double)row[0];
        s->n_next = 0;
        for (int i = 0; i < s->n_beams; i++) {
            int pre = s->beams[i].prefix;
            double pb = s->beams[i].b, pnb = s->beams[i].nb;
            double total = lse(pb, pnb);
            if (has_blank && !add(s, pre, 0, total + p_blank)) return;
            for (int c = 0; c < n_cand; c++) child_of[c] = -1; /* the prefix's children that are candidates */
            for (int ch = s->nodes[pre].child; ch >= 0; ch = s->nodes[ch].sibling)
                if (cand_of[s->nodes[ch].label]) child_of[cand_of[s->nodes[ch].label] - 1] = ch;
            int last = s->nodes[pre].label; /* 0 for the empty prefix: no character repeats it */
            double base = s->nodes[pre].lm_score;
            for (int c = 0; c < n_cand; c++) {
                int k = cand[c];
                double p = (double)row[k];
                int ext = child_of[c];
                if (ext < 0) {
                    double lmp = lm_logp(lm, memo, lm->order - 1, s->nodes[pre].context, positions[k]);
                    uint64_t context = ((s->nodes[pre].context << 8) | (uint64_t)positions[k]) & ctx_mask;
                    double score = base + alpha * lmp + beta;
                    uint64_t word = 0;
                    int word_len = 0, word_oov = 0;
                    if (words->lexicon) {
                        const Prefix *pp = &s->nodes[pre];
                        if (words->fold[k]) { /* a letter: the word goes on */
                            word = fnv_step(pp->word_len ? pp->word : FNV_OFFSET, words->fold[k]);
                            word_len = pp->word_len + 1;
                            word_oov = pp->word_len ? pp->word_oov : 0;
                            if (!word_oov && lexicon_find(words->lexicon, word) == 0) { word_oov = 1; score += words->oov; }
                        } else {
                            score += word_end(words, pp);
                        }
                    }
                    ext = new_prefix(s, pre, k, context, score, t);
                    if (ext < 0) return;
                    s->nodes[ext].word = word; s->nodes[ext].word_len = word_len; s->nodes[ext].word_oov = word_oov;
                }
                if (k == last) {
                    if (!add(s, pre, 1, pnb + p) || !add(s, ext, 1, pb + p)) return;
                } else if (!add(s, ext, 1, total + p)) return;
            }
        }
        for (int i = 0; i < s->n_next; i++) s->nodes[s->next[i].prefix].slot = -1;
        if (s->n_next > width) {
            for (int i = 0; i < s->n_next; i++)
                s->next[i].score = lse(s->next[i].b, s->next[i].nb) + s->nodes[s->next[i].prefix].lm_score;
            keep_best(s, width);
        }
        Beam *swap = s->beams;
        s->beams = s->next;
        s->next = swap;
        s->n_beams = s->n_next;
        for (int c = 0; c < n_cand; c++) cand_of[cand[c]] = 0;
        t++;
    }
    /* the best text, its end scored too (EOS) */
    *best_score = 0.0;
    for (int i = 0; i < s->n_beams; i++) {
        int pre = s->beams[i].prefix;
        double score = lse(s->beams[i].b, s->beams[i].nb) + s->nodes[pre].lm_score + alpha * lm_logp(lm, memo, lm->order - 1, s->nodes[pre].context, eos)
                       + word_end(words, &s->nodes[pre]);
        if (*best < 0 || score > *best_score) { *best = pre; *best_score = score; }
    }
}

/* decode(lm, log_probs, positions, alphabet, alpha, beta, width, prune, eos[, lexicon, fold, oov])
 * -> (labels, first frames, score)
 * log_probs: a C-contiguous float32 (frames, classes) buffer, class 0 the blank; positions[k]: the
 * LM position of class k's character (positions[0] unused); alphabet: the classes' characters;
 * eos: the LM position of the end of line; lexicon: a compile_lexicon capsule or None, fold[k] the
 * code point of class k's case-folded letter (0: not a letter; fold[0] unused), oov the charge for a
 * word not in the lexicon; score: the text's log-probability under the frames (its prefix's, over
 * the paths the beam kept) plus its language-model score, as the search ranked it. The search runs
 * with the GIL released, so lines can be decoded in parallel threads. */
static PyObject *decode(PyObject *self, PyObject *args) {
    PyObject *capsule, *positions_obj, *alphabet, *lexicon_obj = Py_None, *fold_obj = Py_None;
    Py_buffer view;
    double alpha, beta, prune, oov = 0.0;
    int width, eos;
    if (!PyArg_ParseTuple(args, "Oy*O!Uddidi|OOd", &capsule, &view, &PyList_Type, &positions_obj, &alphabet,
                          &alpha, &beta, &width, &prune, &eos, &lexicon_obj, &fold_obj, &oov))
        return NULL;
    LM *lm = PyCapsule_GetPointer(capsule, CAPSULE_NAME);
    PyObject *result = NULL;
    Search s = {0};
    Words words = {NULL, NULL, oov};
    uint32_t *fold = NULL;
    int *positions = NULL, *cand = NULL;
    double *cum = NULL;
    Py_UCS4 *codes = NULL;
    if (!lm) goto done;
    Py_ssize_t classes = PyList_GET_SIZE(positions_obj);
    if (classes < 1 || PyUnicode_GET_LENGTH(alphabet) != classes - 1 || view.itemsize != 4 || view.len % (classes * 4) != 0) {
        PyErr_SetString(PyExc_ValueError, "log_probs must be float32 (frames, len(alphabet) + 1)");
        goto done;
    }
    if (width < 1 || eos < 0 || eos >= lm->vocabulary) {
        PyErr_SetString(PyExc_ValueError, "bad width or EOS position");
        goto done;
    }
    const float *lp = view.buf;
    int frames = (int)(view.len / (classes * 4));
    positions = malloc(sizeof(int) * (size_t)classes);
    codes = PyUnicode_AsUCS4Copy(alphabet);
    cum = malloc(sizeof(double) * (size_t)(frames + 1));
    cand = calloc(3 * (size_t)classes, sizeof(int));
    if (!positions || !codes || !cum || !cand) { if (!PyErr_Occurred()) PyErr_NoMemory(); goto done; }
    s.codes = codes;
    for (Py_ssize_t k = 0; k < classes; k++) {
        long v = PyLong_AsLong(PyList_GET_ITEM(positions_obj, k));
        if (v == -1 && PyErr_Occurred()) goto done;
        if (k > 0 && (v < 0 || v >= lm->vocabulary)) { PyErr_SetString(PyExc_ValueError, "bad LM position"); goto done; }
        positions[k] = (int)v;
    }
    if (lexicon_obj != Py_None) {
        words.lexicon = PyCapsule_GetPointer(lexicon_obj, LEXICON_CAPSULE);
        if (!words.lexicon) goto done;
        if (!PyList_Check(fold_obj) || PyList_GET_SIZE(fold_obj) != classes) {
            PyErr_SetString(PyExc_ValueError, "fold must be a list with one code point per class");
            goto done;
        }
        if (!(fold = malloc(sizeof(uint32_t) * (size_t)classes))) { PyErr_NoMemory(); goto done; }
        for (Py_ssize_t k = 0; k < classes; k++) {
            long v = PyLong_AsLong(PyList_GET_ITEM(fold_obj, k));
            if (v == -1 && PyErr_Occurred()) goto done;
            if (v < 0 || v > 0x10FFFF) { PyErr_SetString(PyExc_ValueError, "bad code point in fold"); goto done; }
            fold[k] = (uint32_t)v;
        }
        words.fold = fold;
    }
    cum[0] = 0.0; /* decode.py sums runs of blank-only frames with the same float64 cumulative sum */
    for (int t = 0; t < frames; t++) cum[t + 1] = cum[t] + (double)lp[(size_t)t * classes];
    int slot, best;
    double best_score;
    Memo *memo = claim_memo(lm, &slot);
    if (!memo) { PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    search(&s, lm, memo, lp, frames, (int)classes, positions, cand, cum, alpha, beta, width, prune, eos, &words, &best, &best_score);
    Py_END_ALLOW_THREADS
    release_memo(lm, memo, slot);
    if (best < 0) { PyErr_NoMemory(); goto done; }
    int n = 0;
    for (int p = best; p > 0; p = s.nodes[p].parent) n++;
    PyObject *labels = PyTuple_New(n), *starts = PyTuple_New(n);
    if (!labels || !starts) { Py_XDECREF(labels); Py_XDECREF(starts); goto done; }
    int i = n;
    for (int p = best; p > 0; p = s.nodes[p].parent) {
        i--;
        PyTuple_SET_ITEM(labels, i, PyLong_FromLong(s.nodes[p].label));
        PyTuple_SET_ITEM(starts, i, PyLong_FromLong(s.nodes[p].first_frame));
    }
    PyObject *score = PyFloat_FromDouble(best_score);
    if (score) result = PyTuple_Pack(3, labels, starts, score);
    Py_DECREF(labels);
    Py_DECREF(starts);
    Py_XDECREF(score);
done:
    PyBuffer_Release(&view);
    free(positions); free(cum); free(cand); free(fold); PyMem_Free(codes);
    free(s.nodes); free(s.beams); free(s.next);
    return result;
}

/* log_dist(lm, context) -> tuple of floats: log P(. | context), context a list of LM positions
 * (oldest first, at most order-1 of them, 255 for BOS): what the search reads, for tests. */
static PyObject *log_dist(PyObject *self, PyObject *args) {
    PyObject *capsule, *context;
    if (!PyArg_ParseTuple(args, "OO!", &capsule, &PyList_Type, &context)) return NULL;
    LM *lm = PyCapsule_GetPointer(capsule, CAPSULE_NAME);
    if (!lm) return NULL;
    Py_ssize_t len = PyList_GET_SIZE(context);
    if (len > lm->order - 1) {
        PyErr_SetString(PyExc_ValueError, "context longer than order - 1");
        return NULL;
    }
    uint64_t chars = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        long v = PyLong_AsLong(PyList_GET_ITEM(context, i));
        if (v < 0 || v > 255) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad position"); return NULL; }
        chars = (chars << 8) | (uint64_t)v;
    }
    int slot;
    Memo *memo = claim_memo(lm, &slot);
    PyObject *out = memo ? PyTuple_New(lm->vocabulary) : PyErr_NoMemory();
    if (out)
        for (int c = 0; c < lm->vocabulary; c++) PyTuple_SET_ITEM(out, c, PyFloat_FromDouble(lm_logp(lm, memo, (int)len, chars, c)));
    if (memo) release_memo(lm, memo, slot);
    return out;
}

static PyMethodDef methods[] = {
    {"compile_lm", compile_lm, METH_VARARGS, "compile_lm(counts, index, vocabulary, discount, order, bos) -> LM capsule"},
    {"decode", decode, METH_VARARGS, "decode(lm, log_probs, positions, alphabet, alpha, beta, width, prune, eos[, lexicon, fold, oov]) -> (labels, first_frames)"},
    {"compile_lexicon", compile_lexicon, METH_VARARGS, "compile_lexicon(words) -> lexicon capsule (words: case-folded, one a line)"},
    {"log_dist", log_dist, METH_VARARGS, "log_dist(lm, context_positions) -> log P(. | context)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ctcbeam", "CTC prefix beam search with a character LM (C)", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__ctcbeam(void) { return PyModule_Create(&module); }
