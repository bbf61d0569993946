-- 0009 search ranking: the same top results as 0006, found without ranking
-- every match, and Korean words matched with their particles by full text.
--
-- What is ranked does not change: ims.search_issues returns the max_results
-- full-text matches with the highest ts_rank(search_vector, query), equal
-- ranks in issue_pk order, then (as in 0006) the title-text tier. Two things
-- change.
--
-- 1. Korean words. Korean glues particles to words ('시간이' = '시간' +
--    '이'), so the word '시간' (time) was no full-text match for '시간이' and
--    took 0006's title-text tier, a scan of every title (its two-syllable
--    pattern gives the trigram index nothing to look up: 287 ms at 10^5
--    issues, 2.4 s at 10^6). The full-text query (ims.search_tsquery) now
--    matches a Hangul word of two or more syllables as a word start:
--    '시간':* finds '시간', '시간이', '시간을' through the GIN index (5.5 ms
--    at 10^5). The title-text tier stays for what full text cannot find (a
--    word inside a compound: '연결' in '데이터베이스연결'), and when it runs
--    for two-syllable words a new index of the titles' Hangul syllable pairs
--    serves it ('%설정%파일%': 3 s at 10^6 by a scan, 0.2 ms by the index).
--
-- 2. Broad queries. ts_rank has no index: 0006 computed it for every match
--    (230,000 for 'server -network' at 10^6 issues: 1.8 s) to keep 50. The
--    RUM index (postgresql-15-rum) orders by rank inside the index, but by
--    its own rank (rum_ts_distance, a cover-density score), not ts_rank, so
--    it cannot return ts_rank's top 50 and is not used. Instead, an index of
--    upper bounds lets the function rank only the matches that can still
--    reach the top, and prove it:
--
--    - For a query whose top node is OR (every query with an english part:
--      english OR simple), ts_rank is the mean, over the query's distinct
--      lexemes, of one contribution per lexeme: c = (w_max + sum_j w_j/j^2
--      - w_max/j_max^2) / 1.6449 over the lexeme's positions (weights A = 1,
--      B = 0.4; 0 when absent; for a prefix, the sum over the lexemes it
--      matches). Only a title (weight A) lifts c to 0.4 or more: a lexeme
--      seen only in the description (all B) has c < 0.4.
--    - ims.search_impacts(search_vector), indexed by GIN, holds every lexeme
--      of the issue, plus 'lexeme#t' with t = floor(20 c) for each lexeme
--      with c >= 0.4 (c computed by ts_rank itself, so exactly as the query
--      ranks), and for Hangul words the same for their 2- and 3-syllable
--      prefixes ('시간*', '시간*#15'). So an issue without a token 'x#t' for
--      t >= T has c(x) < T/20.
--    - ims.search_full_text picks a threshold X and asks the index for every
--      issue whose ranks could sum to X or more (a tsquery over those tokens,
--      ims.search_candidates); any other match ranks below X. If at least
--      max_results candidates rank X or more, their best max_results are the
--      top of all matches: no other match can reach them, and none can tie.
--      Otherwise it lowers X (or sets it just below the best candidates'
--      last rank, which then always proves) and asks again. Queries it cannot
--      bound (top node AND or phrase, a phrase under a negation, more than
--      six lexemes) and queries the planner expects to have few matches
--      (10,000 or fewer: ranking them all costs about 2 us each, no more than
--      the rounds; the setting ims.search_rank_all_below changes the number)
--      rank every match as before.
--
-- Cost: the bounds index (161 MB at 10^6 issues; this migration takes 45-65 s
-- there) and its maintenance, about 30 us per inserted or re-indexed issue
-- (15 us for an English issue, 80 us for a Korean one: computing the bounds);
-- the pairs index, 8 MB, 5 us per issue.
--
-- The rollback restores the 0006 ims.search_issues exactly and drops the rest.
-- depends: 0006.search


-- Create everything below as the owner (see 0002 for why SET LOCAL).
SET LOCAL ROLE ims_owner;

-- The index builds take a SHARE lock on ims.issues (reads go on, crawls
-- wait, 45-65 s at 10^6 issues): fail fast rather than queue behind a long
-- transaction. Not CONCURRENTLY: the indexes need this file's functions, and
-- yoyo runs the file in one transaction.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';


-- The full-text query for a search text: web-search syntax (quotes, "or",
-- -word; any text is valid), english (stemmed) OR simple (words as typed), as
-- in 0004, with every Hangul word of two or more syllables matched as a word
-- start ('시간' -> '시간':*), so a word is found with the particles Korean
-- glues to it. One-syllable words stay exact: as prefixes they would match
-- most Korean words.
CREATE FUNCTION ims.search_tsquery(query text)
RETURNS tsquery
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    result tsquery := websearch_to_tsquery('english'::regconfig, COALESCE(query, ''))
        || websearch_to_tsquery('simple'::regconfig, COALESCE(query, ''));
    word text;
BEGIN
    -- The query's words as the parser splits them (the same parser as above).
    FOREACH word IN ARRAY tsvector_to_array(to_tsvector('simple'::regconfig, COALESCE(query, ''))) LOOP
        IF word ~ '^[가-힣]{2,}$' THEN
            -- Hangul syllables only: nothing to quote.
            result := ts_rewrite(result, ('''' || word || '''')::tsquery, ('''' || word || ''':*')::tsquery);
        END IF;
    END LOOP;
    RETURN result;
END
$$;

COMMENT ON FUNCTION ims.search_tsquery(text) IS
    'The full-text query of a search text: websearch_to_tsquery english OR simple, Hangul words of 2+ syllables as word starts (''시간'':*). ims.search_issues ranks its matches by ts_rank(search_vector, this).';


-- A lexeme as a quoted tsquery / tsvector literal.
CREATE FUNCTION ims.search_quote(lexeme text)
RETURNS text
LANGUAGE sql
IMMUTABLE
STRICT
PARALLEL SAFE
RETURN '''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''';

COMMENT ON FUNCTION ims.search_quote(text) IS
    'A lexeme as a quoted tsquery or tsvector literal (quotes doubled, backslashes escaped).';


-- The tokens ims.issues_search_impacts_idx holds for a search vector (see the
-- header): every lexeme; 'lexeme#t' for a lexeme whose ts_rank contribution c
-- is 0.4 or more, t = floor(20 c) capped at 30 (t = 30: c >= 1.5, no upper
-- bound); and for every Hangul word, 'p*' for its first two and first three
-- syllables p, with 'p*#t' when the contributions of the words starting with p
-- sum to 0.4 or more. A lexeme with only B (description) positions has
-- c < 0.4, so only lexemes with another weight are ranked; a prefix shared by
-- one description-only word has a sum < 0.4 too. The vector's lexemes are
-- sorted bytewise, so words sharing a prefix are neighbours.
CREATE FUNCTION ims.search_impacts(vector tsvector)
RETURNS tsvector
LANGUAGE plpgsql
IMMUTABLE
STRICT
PARALLEL SAFE
COST 1000
AS $$
DECLARE
    tokens text[] := '{}';
    strong text[] := tsvector_to_array(ts_filter(vector, '{a,c,d}'));
    lexemes text[] := tsvector_to_array(vector);
    lexeme text;
    score real;
    is_strong boolean;
    prefix2 text;
    group2 text;
    rank2 boolean := false;
    prefix3 text;
    group3 text;
    rank3 boolean := false;
BEGIN
    FOREACH lexeme IN ARRAY strong LOOP
        score := ts_rank(vector, ims.search_quote(lexeme)::tsquery);
        IF score >= 0.4 THEN
            tokens := tokens || (lexeme || '#' || least(floor(20 * score::double precision)::integer, 30));
        END IF;
    END LOOP;
    -- Hangul words, if any: the greatest lexeme sorts at or after them.
    IF lexemes[cardinality(lexemes)] COLLATE "C" >= '가' THEN
        FOREACH lexeme IN ARRAY lexemes LOOP
            CONTINUE WHEN substr(lexeme, 1, 1) COLLATE "C" < '가' OR substr(lexeme, 1, 1) COLLATE "C" > '힣'
                OR substr(lexeme, 2, 1) COLLATE "C" < '가' OR substr(lexeme, 2, 1) COLLATE "C" > '힣';
            is_strong := lexeme = ANY (strong);
            -- Two syllables: a group of neighbours with the same prefix is ranked
            -- when it has two words or a title word.
            prefix2 := left(lexeme, 2);
            IF prefix2 = group2 THEN
                rank2 := true;
            ELSE
                IF rank2 THEN
                    score := ts_rank(vector, ('''' || group2 || ''':*')::tsquery);
                    IF score >= 0.4 THEN
                        tokens := tokens || (group2 || '*#' || least(floor(20 * score::double precision)::integer, 30));
                    END IF;
                END IF;
                group2 := prefix2;
                rank2 := false;
                tokens := tokens || (prefix2 || '*');
            END IF;
            rank2 := rank2 OR is_strong;
            -- Three syllables, the same way.
            CONTINUE WHEN substr(lexeme, 3, 1) COLLATE "C" < '가' OR substr(lexeme, 3, 1) COLLATE "C" > '힣';
            prefix3 := left(lexeme, 3);
            IF prefix3 = group3 THEN
                rank3 := true;
            ELSE
                IF rank3 THEN
                    score := ts_rank(vector, ('''' || group3 || ''':*')::tsquery);
                    IF score >= 0.4 THEN
                        tokens := tokens || (group3 || '*#' || least(floor(20 * score::double precision)::integer, 30));
                    END IF;
                END IF;
                group3 := prefix3;
                rank3 := false;
                tokens := tokens || (prefix3 || '*');
            END IF;
            rank3 := rank3 OR is_strong;
        END LOOP;
        IF rank2 THEN
            score := ts_rank(vector, ('''' || group2 || ''':*')::tsquery);
            IF score >= 0.4 THEN
                tokens := tokens || (group2 || '*#' || least(floor(20 * score::double precision)::integer, 30));
            END IF;
        END IF;
        IF rank3 THEN
            score := ts_rank(vector, ('''' || group3 || ''':*')::tsquery);
            IF score >= 0.4 THEN
                tokens := tokens || (group3 || '*#' || least(floor(20 * score::double precision)::integer, 30));
            END IF;
        END IF;
    END IF;
    RETURN strip(vector) || array_to_tsvector(tokens);
END
$$;

COMMENT ON FUNCTION ims.search_impacts(tsvector) IS
    'Index tokens bounding ts_rank: every lexeme; lexeme#t when its ts_rank contribution c >= 0.4 (t = floor(20 c), max 30 = unbounded); for Hangul words p* and p*#t for their 2- and 3-syllable prefixes p (t from the summed contributions). No token x#t with t >= T means c(x) < T/20.';


-- Upper bounds of every issue's ts_rank contributions (see the header).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX issues_search_impacts_idx
    ON ims.issues
    USING gin (ims.search_impacts(search_vector));

COMMENT ON INDEX ims.issues_search_impacts_idx IS
    'GIN over ims.search_impacts(search_vector): lexemes and bounds of their ts_rank contributions; ims.search_full_text finds the issues that can reach the top through it.';


-- The pairs of neighbouring Hangul syllables in a text ('데이터' -> 데이,
-- 이터): a title containing a text contains its pairs, so an index of the
-- titles' pairs serves the title-text tier where the trigram index cannot
-- (words of two syllables hold no trigram). Empty without Hangul.
CREATE FUNCTION ims.search_bigrams(value text)
RETURNS text[]
LANGUAGE plpgsql
IMMUTABLE
STRICT
PARALLEL SAFE
AS $$
DECLARE
    pairs text[] := '{}';
    run text;
    k integer;
BEGIN
    IF value !~ '[가-힣]' THEN
        RETURN pairs;
    END IF;
    FOR run IN SELECT (regexp_matches(value, '[가-힣]{2,}', 'g'))[1] LOOP
        FOR k IN 1 .. length(run) - 1 LOOP
            pairs := pairs || substr(run, k, 2);
        END LOOP;
    END LOOP;
    RETURN pairs;
END
$$;

COMMENT ON FUNCTION ims.search_bigrams(text) IS
    'The pairs of neighbouring Hangul syllables in a text (empty without Hangul): what a title must hold to contain the text.';


-- The title-text tier for Hangul words of two syllables (see the header).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX issues_title_bigrams_idx
    ON ims.issues
    USING gin (ims.search_bigrams(title));

COMMENT ON INDEX ims.issues_title_bigrams_idx IS
    'GIN over ims.search_bigrams(title): the title-text tier of ims.search_issues for Hangul words the trigram index cannot serve.';


-- What ims.search_full_text needs to bound a query's ranks: its distinct
-- lexemes as ts_rank counts them (by text; prefixes[i]: a prefix match), and
-- patterns: every set of lexemes (bit i-1 for lexemes[i]) whose presence in an
-- issue lets it match, all other lexemes absent. All NULL when the ranks
-- cannot be bounded this way: ts_rank ranks an AND or a phrase at the top of
-- the query by proximity, a phrase under a negation cannot be judged without
-- positions, more than six lexemes would need too many patterns.
CREATE FUNCTION ims.search_operands(
    query tsquery,
    OUT lexemes text[],
    OUT prefixes boolean[],
    OUT patterns integer[]
)
LANGUAGE plpgsql
IMMUTABLE
STRICT
PARALLEL SAFE
AS $$
DECLARE
    -- The operators alone: every quoted lexeme (with its flags) becomes x.
    shape text := regexp_replace(query::text, '''(?:[^'']|'''')*''(:[*A-D]+)?', 'x', 'g');
    operand text[];
    lexeme text;
    present text;
    mask integer;
    i integer;
BEGIN
    IF shape ~ '!' AND shape ~ '<' OR shape ~ '<[0-9]{3,}>|<[4-9][0-9]>|<3[2-9]>' THEN
        RETURN;
    END IF;
    -- Remove the parenthesised groups: what is left is the top node.
    WHILE shape ~ '\(' LOOP
        shape := regexp_replace(shape, '\([^()]*\)', 'x', 'g');
    END LOOP;
    IF shape ~ '[&<]' AND shape !~ '\|' THEN
        RETURN;
    END IF;
    lexemes := '{}';
    prefixes := '{}';
    FOR operand IN SELECT regexp_matches(query::text, '''((?:[^'']|'''')*)''(:[*A-D]+)?', 'g') LOOP
        IF operand[2] IS NOT NULL AND operand[2] <> ':*' THEN
            lexemes := NULL;  -- a weight: not a query ims.search_tsquery makes
            prefixes := NULL;
            RETURN;
        END IF;
        lexeme := replace(replace(operand[1], '''''', ''''), '\\', '\');
        IF NOT lexeme = ANY (lexemes) THEN
            lexemes := lexemes || lexeme;
            prefixes := prefixes || (operand[2] IS NOT NULL);
        END IF;
        IF cardinality(lexemes) > 6 THEN
            lexemes := NULL;
            prefixes := NULL;
            RETURN;
        END IF;
    END LOOP;
    -- Try every set: a vector holding exactly those lexemes, each at positions
    -- 1-32 so that any phrase of them matches too.
    patterns := '{}';
    FOR mask IN 1 .. (1 << cardinality(lexemes)) - 1 LOOP
        present := '';
        FOR i IN 1 .. cardinality(lexemes) LOOP
            IF mask & (1 << (i - 1)) <> 0 THEN
                present := present || ' ' || ims.search_quote(lexemes[i])
                    || ':1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32';
            END IF;
        END LOOP;
        IF present::tsvector @@ query THEN
            patterns := patterns || mask;
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION ims.search_operands(tsquery) IS
    'The distinct lexemes of a search tsquery (as ts_rank counts them), their prefix flags and the sets of them whose presence lets an issue match; NULL when ts_rank of the query cannot be bounded per lexeme.';


-- The text of a tsquery over ims.search_impacts that every matching issue
-- ranked threshold or more satisfies ('' when none can; NULL when it would be
-- every match; text, as an empty tsquery value draws a NOTICE). An issue whose present lexemes are the pattern P ranks at most
-- (sum of their bounds) / n, so it reaches threshold only if one of them has
-- a bound of at least need = n * threshold / |P| and all of P are present.
-- Lexemes without a rank token are bounded by 0.4; when need <= 0.4 the
-- presence alone is the condition. A prefix operand longer than three
-- syllables is bounded through its first three (a superset of its words).
CREATE FUNCTION ims.search_candidates(
    lexemes text[],
    prefixes boolean[],
    patterns integer[],
    threshold double precision
)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
STRICT
PARALLEL SAFE
AS $$
DECLARE
    n integer := cardinality(lexemes);
    base text[] := '{}';
    parts text[] := '{}';
    sets text[];
    members integer[];
    tiers text[];
    present text[];
    present_members integer[];
    need double precision;
    mask integer;
    size integer;
    i integer;
    t integer;
    top integer;
BEGIN
    FOR i IN 1 .. n LOOP
        base := base || CASE WHEN prefixes[i] THEN left(lexemes[i], 3) || '*' ELSE lexemes[i] END;
    END LOOP;
    FOR size IN 1 .. n LOOP
        need := n * threshold / size;
        sets := '{}';
        members := '{}';
        FOREACH mask IN ARRAY patterns LOOP
            present := '{}';
            present_members := '{}';
            FOR i IN 1 .. n LOOP
                IF mask & (1 << (i - 1)) <> 0 THEN
                    present := present || ims.search_quote(base[i]);
                    present_members := present_members || i;
                END IF;
            END LOOP;
            CONTINUE WHEN cardinality(present) <> size;
            sets := sets || array_to_string(present, ' & ');
            members := members || present_members;
        END LOOP;
        CONTINUE WHEN cardinality(sets) = 0;
        IF need <= 0.4 THEN
            IF size = 1 THEN
                RETURN NULL;
            END IF;
            parts := parts || ('(' || array_to_string(sets, ' | ') || ')');
            CONTINUE;
        END IF;
        -- Some member's token with t/20 >= need - 0.05: up to 21 for a lexeme (its c
        -- is at most 1.089, with an A at the second position and all after it), to
        -- the open-ended 30 for a prefix (a sum).
        tiers := '{}';
        FOREACH i IN ARRAY members LOOP
            top := CASE WHEN prefixes[i] THEN 30 ELSE 21 END;
            CONTINUE WHEN ims.search_quote(base[i] || '#' || top) = ANY (tiers);
            FOR t IN greatest(8, ceil(20 * need)::integer - 1) .. top LOOP
                tiers := tiers || ims.search_quote(base[i] || '#' || t);
            END LOOP;
            IF prefixes[i] AND ceil(20 * need)::integer - 1 > 30 THEN
                tiers := tiers || ims.search_quote(base[i] || '#30');
            END IF;
        END LOOP;
        CONTINUE WHEN cardinality(tiers) = 0;
        parts := parts || ('(' || array_to_string(tiers, ' | ') || ') & (' || array_to_string(sets, ' | ') || ')');
    END LOOP;
    RETURN array_to_string(parts, ' | ');
END
$$;

COMMENT ON FUNCTION ims.search_candidates(text[], boolean[], integer[], double precision) IS
    'The text of a tsquery over ims.search_impacts satisfied by every matching issue that can rank threshold or more ('''': none can; NULL: every match can).';


-- The planner's estimate of the issues a query over ims.search_impacts
-- matches (one EXPLAIN, about 0.2 ms): below ten thousand, ranking every
-- match is as cheap as bounding. Over the impacts, not the search vector: its
-- statistics count the Hangul prefixes ('시간*') as tokens, where the
-- estimate of a prefix match ('시간':*) on the vector is ten times too low.
-- VOLATILE because EXPLAIN is refused in a STABLE function; it reads nothing
-- but statistics.
CREATE FUNCTION ims.search_estimate(query tsquery, product text)
RETURNS double precision
LANGUAGE plpgsql
VOLATILE
PARALLEL RESTRICTED
AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT FROM ims.issues '
            'WHERE ims.search_impacts(search_vector) @@ $1 AND ($2::text IS NULL OR product = $2)'
        INTO plan
        USING query, product;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::double precision;
END
$$;

COMMENT ON FUNCTION ims.search_estimate(tsquery, text) IS
    'The planner''s estimate of the issues (of one product, or all) whose ims.search_impacts match a query.';


-- The max_results full-text matches of the query with the highest ts_rank,
-- equal ranks in issue_pk order: exactly the first rows of ranking every
-- match, found through ims.issues_search_impacts_idx when the ranks can be
-- bounded and the planner expects more than ims.search_rank_all_below
-- matches (a setting, default 10000; 0: always bound). Thresholds are tried
-- from the top down; a round that finds max_results candidates but cannot
-- prove them sets the threshold just below their last rank, where the next
-- round always proves. DEBUG messages tell which way a query went. Own
-- settings: custom plans (each round's tsquery decides between index and
-- scan), no JIT (compiling costs more than these queries), enough work_mem
-- for exact bitmaps.
CREATE FUNCTION ims.search_full_text(
    query text,
    product text DEFAULT NULL,
    max_results integer DEFAULT 50
)
RETURNS TABLE (issue_pk bigint, rank real)
LANGUAGE plpgsql
STABLE
PARALLEL RESTRICTED
SECURITY INVOKER
SET plan_cache_mode = force_custom_plan
SET jit = off
SET work_mem = '32MB'
AS $$
DECLARE
    wanted integer := GREATEST(COALESCE(max_results, 50), 0);
    tsq tsquery := ims.search_tsquery(query);
    operands record;
    thresholds double precision[] := '{1.6, 1.3, 1.1, 0.95, 0.85, 0.75, 0.65, 0.55, 0.45}';
    step integer := 1;
    threshold double precision;
    rounds integer := 0;
    presence tsquery;
    estimate double precision;
    i integer;
    candidates text;
    pks bigint[];
    ranks real[];
    ranked integer;
    last_rank real;
BEGIN
    SELECT o.lexemes, o.prefixes, o.patterns INTO operands FROM ims.search_operands(tsq) AS o;
    IF wanted > 0 AND cardinality(operands.patterns) > 0 THEN
        -- The query over the impacts, to estimate: a prefix as its token ('시간*').
        presence := tsq;
        FOR i IN 1 .. cardinality(operands.lexemes) LOOP
            CONTINUE WHEN NOT operands.prefixes[i];
            presence := ts_rewrite(presence, ims.search_quote(operands.lexemes[i])::tsquery,
                                   ims.search_quote(left(operands.lexemes[i], 3) || '*')::tsquery);
        END LOOP;
        estimate := ims.search_estimate(presence, search_full_text.product);
        RAISE DEBUG 'ims.search_full_text: about % matches', round(estimate);
    END IF;
    IF estimate > COALESCE(NULLIF(current_setting('ims.search_rank_all_below', true), '')::double precision, 10000) THEN
        threshold := thresholds[1];
        LOOP
            candidates := ims.search_candidates(operands.lexemes, operands.prefixes, operands.patterns, threshold);
            EXIT WHEN candidates IS NULL OR rounds = 20;
            rounds := rounds + 1;
            ranked := 0;
            IF candidates <> '' THEN
                -- ts_match_vq(): the match is checked on the candidates' rows, not
                -- looked up in issues_search_vector_idx as well.
                SELECT COALESCE(array_agg(h.issue_pk ORDER BY h.rank DESC, h.issue_pk), '{}'),
                       COALESCE(array_agg(h.rank ORDER BY h.rank DESC, h.issue_pk), '{}'),
                       count(*),
                       min(h.rank)
                INTO pks, ranks, ranked, last_rank
                FROM (
                    SELECT i.issue_pk, ts_rank(i.search_vector, tsq) AS rank
                    FROM ims.issues AS i
                    WHERE ims.search_impacts(i.search_vector) @@ candidates::tsquery
                      AND ts_match_vq(i.search_vector, tsq)
                      AND (search_full_text.product IS NULL OR i.product = search_full_text.product)
                    ORDER BY rank DESC, i.issue_pk
                    LIMIT wanted
                ) AS h;
            END IF;
            RAISE DEBUG 'ims.search_full_text: threshold %: % candidates, last rank %', threshold, ranked, last_rank;
            -- Every other match ranks below the threshold (1e-5: more than the
            -- float rounding of a rank), so below these: they are the top.
            IF ranked = wanted AND last_rank >= threshold + 1e-5 THEN
                RAISE DEBUG 'ims.search_full_text: top % proved in % rounds', wanted, rounds;
                RETURN QUERY SELECT unnest(pks), unnest(ranks);
                RETURN;
            END IF;
            step := step + 1;
            threshold := CASE WHEN ranked = wanted THEN last_rank - 2e-5 ELSE thresholds[step] END;
            EXIT WHEN threshold IS NULL OR threshold <= 0.4;
        END LOOP;
    END IF;
    RAISE DEBUG 'ims.search_full_text: ranking every match';
    RETURN QUERY
    SELECT i.issue_pk, ts_rank(i.search_vector, tsq) AS rank
    FROM ims.issues AS i
    WHERE i.search_vector @@ tsq
      AND (search_full_text.product IS NULL OR i.product = search_full_text.product)
    ORDER BY rank DESC, i.issue_pk
    LIMIT wanted;
END
$$;

COMMENT ON FUNCTION ims.search_full_text(text, text, integer) IS
    'The max_results full-text matches (ims.search_tsquery) with the highest ts_rank, ties in issue_pk order, optionally of one product: exactly the first rows of ranking every match, found through issues_search_impacts_idx when the ranks can be bounded.';


-- 0006's title-text tier (see there): issues not in exclude whose title holds
-- the query's words as text, in the order typed, any case, anything between
-- them, ranked word_similarity - 1, at most max_results. Now also served by
-- the pairs index: titles must hold the query's Hangul pairs, a condition
-- implied by the pattern (the function costs more than ILIKE, so a scan
-- checks it only on the titles ILIKE keeps). plpgsql with custom plans: a
-- generic plan (a prepared caller's) cannot tell a query without Hangul
-- (pairs '{}', every title) from one with, and would read the pairs index
-- whole.
CREATE FUNCTION ims.search_title_text(
    query text,
    product text,
    max_results integer,
    exclude bigint[]
)
RETURNS TABLE (issue_pk bigint, rank real)
LANGUAGE plpgsql
STABLE
PARALLEL SAFE
SECURITY INVOKER
SET plan_cache_mode = force_custom_plan
SET jit = off
AS $$
BEGIN
    RETURN QUERY
    SELECT
        i.issue_pk,
        (ims.word_similarity(search_title_text.query, i.title) - 1)::real AS rank
    FROM (
        SELECT
            -- '%' around the trimmed query and for every run of whitespace,
            -- after escaping the LIKE metacharacters in it.
            '%' || regexp_replace(
                replace(replace(replace(
                    regexp_replace(search_title_text.query, '^[[:space:]]+|[[:space:]]+$', '', 'g'),
                    '\', '\\'), '%', '\%'), '_', '\_'),
                '[[:space:]]+', '%', 'g'
            ) || '%' AS pattern
        WHERE search_title_text.query ~ '[^[:space:]]'
          AND search_title_text.query !~* '"|(^|[[:space:]])(-|or([[:space:]]|$))'
    ) AS q
    JOIN ims.issues AS i
      ON i.title ILIKE q.pattern
     AND ims.search_bigrams(i.title) @> ims.search_bigrams(search_title_text.query)
    WHERE (search_title_text.product IS NULL
           OR i.product = search_title_text.product)
      AND NOT i.issue_pk = ANY (COALESCE(search_title_text.exclude, '{}'))
    ORDER BY
        rank DESC,
        i.issue_pk
    LIMIT GREATEST(search_title_text.max_results, 0);
END
$$;

COMMENT ON FUNCTION ims.search_title_text(text, text, integer, bigint[]) IS
    'The title-text tier of ims.search_issues: issues not in exclude whose title contains the query''s words as text, in order, any case, anything between them (trigram and Hangul pairs indexes), rank = word_similarity - 1, at most max_results.';


-- Ranked issue search in two tiers, as 0006, with its full-text tier from
-- ims.search_full_text (Hangul words as word starts, the top found through
-- the bounds index) and its title-text tier from ims.search_title_text (also
-- served by the pairs index). Same signature and result columns (CREATE OR
-- REPLACE keeps the privileges); PARALLEL RESTRICTED like the function it
-- calls.
CREATE OR REPLACE FUNCTION ims.search_issues(
    query text,
    product text DEFAULT NULL,
    max_results integer DEFAULT 50
)
RETURNS TABLE (
    issue_pk bigint,
    issue_id text,
    title text,
    product text,
    status text,
    rank real
)
LANGUAGE sql
STABLE
PARALLEL RESTRICTED
SECURITY INVOKER
AS $$
WITH full_text AS (
    SELECT
        i.issue_pk,
        i.issue_id,
        i.title,
        i.product,
        i.status,
        f.rank
    FROM ims.search_full_text(search_issues.query, search_issues.product, search_issues.max_results) AS f
    JOIN ims.issues AS i
      ON i.issue_pk = f.issue_pk
),
title_text AS (
    SELECT
        i.issue_pk,
        i.issue_id,
        i.title,
        i.product,
        i.status,
        t.rank
    FROM ims.search_title_text(
        search_issues.query,
        search_issues.product,
        GREATEST(COALESCE(search_issues.max_results, 50), 0) - (SELECT count(*)::integer FROM full_text),
        ARRAY(SELECT f.issue_pk FROM full_text AS f)
    ) AS t
    JOIN ims.issues AS i
      ON i.issue_pk = t.issue_pk
    -- Only then (a condition on no row: the function is not even called).
    WHERE (SELECT count(*) FROM full_text) < GREATEST(COALESCE(search_issues.max_results, 50), 0)
)
SELECT
    hit.issue_pk,
    hit.issue_id,
    hit.title,
    hit.product,
    hit.status,
    hit.rank
FROM (
    SELECT
        ft.issue_pk,
        ft.issue_id,
        ft.title,
        ft.product,
        ft.status,
        ft.rank
    FROM full_text AS ft
    UNION ALL
    SELECT
        tt.issue_pk,
        tt.issue_id,
        tt.title,
        tt.product,
        tt.status,
        tt.rank
    FROM title_text AS tt
) AS hit
ORDER BY
    hit.rank DESC,
    hit.issue_pk;
$$;

COMMENT ON FUNCTION ims.search_issues(text, text, integer) IS
    'Ranked issue search, best first, at most max_results rows, optionally for one product: full-text hits (ims.search_full_text: web-search syntax; title before description; english stemming and words as typed; Hangul words of 2+ syllables as word starts; rank = ts_rank, the top max_results of all matches), then, when those are fewer than max_results and the query has no web-search operator, issues whose title contains the query''s words as text, in order, any case, anything between them (trigram index; rank = word_similarity - 1, <= 0).';


-- Functions are executable by PUBLIC by default; keep them to the runtime
-- role (the owner keeps EXECUTE as owner). ims.search_issues keeps its grants.
REVOKE EXECUTE
    ON FUNCTION
        ims.search_tsquery(text),
        ims.search_quote(text),
        ims.search_impacts(tsvector),
        ims.search_bigrams(text),
        ims.search_operands(tsquery),
        ims.search_candidates(text[], boolean[], integer[], double precision),
        ims.search_estimate(tsquery, text),
        ims.search_full_text(text, text, integer),
        ims.search_title_text(text, text, integer, bigint[])
    FROM PUBLIC;


GRANT EXECUTE
    ON FUNCTION
        ims.search_tsquery(text),
        ims.search_quote(text),
        ims.search_impacts(tsvector),
        ims.search_bigrams(text),
        ims.search_operands(tsquery),
        ims.search_candidates(text[], boolean[], integer[], double precision),
        ims.search_estimate(tsquery, text),
        ims.search_full_text(text, text, integer),
        ims.search_title_text(text, text, integer, bigint[])
    TO ims_app;
