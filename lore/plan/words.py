"""The planner's closed word lists: English function words and the words of analytics questions.

Nothing here names a metric, a table, a column or a value of any warehouse: every domain word the
planner knows comes from the semantic layer and the value index (:mod:`lore.plan.lexicon`). A test
checks that no name of the demo layer appears anywhere in ``lore/plan/``.
"""

from __future__ import annotations

import re

from lore.retrieve.lexical import stem

#: small numbers written as words ("top five", "last three months")
NUMBER_WORDS: dict[str, int] = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                                "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15,
                                "twenty": 20, "fifty": 50, "hundred": 100}
NUMBER_ALT = "|".join(NUMBER_WORDS)


def number_value(word: str) -> int | None:
    """A count written in digits or words.

    >>> number_value("5"), number_value("five"), number_value("many")
    (5, 5, None)
    """
    word = word.lower()
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word)


def _stems(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in text.split())


#: words that say nothing about what to compute: articles, pronouns, auxiliaries, question words, politeness,
#: the generic words of analytics requests ("show", "total", "number", "data"); an unexplained word outside
#: this list is content the plan did not use
FUNCTION_WORDS: frozenset[str] = _stems("""
    a an the of to in on at for from with by per via into onto over under about across within without
    between among through during before after since until till than as like versus vs
    and or nor but also too as well plus either neither both
    i me my we us our ours you your they them their theirs he him his she her it its this that these those
    there here who whom whose which what when where why how
    is are was were be been being am do does did done doing have has had having will would shall should
    can could may might must let lets let's get got gets getting go going make made
    please pls plz thanks thank thx ty hi hello hey ok okay kindly just only really actually exactly roughly about around
    approximately basically simply even still already yet ever
    expensive cheap cheapest costly costliest popular busy busiest profitable valuable big bigger biggest small
    smaller smallest large larger largest good better great poor high higher low lower
    compare compared comparing comparison instead break broke split splitting side etc etcetera versus respectively
    best worst top bottom highest lowest greatest fewest maximum minimum max min rank ranked ranking leading
    popular unpopular selling performing
    leave leaving left out exclude excluding except without only just alone
    distinct unique different separate individual separately individually combined together altogether
    come came coming sit sitting stand standing move moved moving differ differed differs went happen happened
    look looks looked seem seems seemed stack stacks stacked perform performed performing doing do did
    ring rings rang rung up take takes took taken bring brings brought keep keeps keeping kept
    right now currently presently lately recently nowadays today's
    weve ive youve theyve im youre theyre whats hows wheres whos thats dont didnt doesnt isnt arent wasnt werent
    hasnt havent hadnt cant couldnt wont wouldnt shouldnt single
    i'm i've i'd we're we've let's what's how's that's there's it's who's where's
    year olds old aged age ages
    prepare preparing prepared review reviewing analyse analyze analysing analyzing understand see saw
    someone people person folks everyone everybody anybody anyone
    so far overall general generally typically usually normally roughly
    show shows showing shown give gives giving tell telling list listing find see look display report
    return returns fetch pull need want know wondering curious interested check compute calculate count
    total totals overall number numbers amount amounts sum value values figure figures data info information
    metric metrics kpi kpis stat stats statistic statistics result results breakdown chart graph plot table
    all any some every each much many more most less least lot lots whole entire full
    so far now then again same other another else new current recent
    time times period periods range trend trends trending over
    one ones thing things stuff something anything everything
    yes no not
    """)

#: a ranking word before the things ranked, without a count: "top stores by revenue", "the busiest regions",
#: "best-selling products" (with a count, :data:`TOP_RE` reads it)
RANKED_NOUN_RE = re.compile(r"\b(?<!\bat\s)(?:top|bottom|best|worst|leading|biggest|largest|busiest|quietest|highest|lowest|"
                            r"most|least|fewest|fastest|slowest)(?:[\s-]+(?:popular|selling|earning|grossing|performing|"
                            r"rated|paying|spending|watched|played|used|active|growing|shrinking|rising|declining|"
                            r"falling|improving))?\s+", re.I)

#: "the 3 best sellers", "top performers": the rows ranked are those of the breakdown already asked for (unless
#: the layer names a node so)
RANKED_IDIOMS = frozenset({"seller", "sellers", "bestseller", "bestsellers", "performer", "performers", "earner",
                           "earners", "ones"})
#: words right before a second metric that make it a condition on the rows of the first ("orders that had no
#: items", "customers with more than 3 orders", "orders with at least one jaffle"): not a second measure
CONDITION_RE = re.compile(r"\b(?:(?:that\s+|which\s+|who\s+)?(?:had|has|have|having|with|containing|contain|"
                          r"contains|include|includes|included)\s+)?(?:(?P<exists>at\s+least\s+(?:one|1|a|an)|any|"
                          r"one\s+or\s+more|some)|no|zero|at\s+least\s+\w+|more\s+than\s+\w+|over\s+\d+|"
                          r"fewer\s+than\s+\w+|less\s+than\s+\w+|under\s+\d+|only\s+one|exactly\s+\w+|"
                          r"multiple|several|\d+\+?)\s+(?:\w+\s+)?$|\bwithout\s+(?:any\s+)?$|"
                          r"\b(?:with|containing|(?:that|which|who)\s+(?:had|has|have|contained|contains|included|"
                          r"includes))\s+(?P<exists_a>an?|one)\s+(?:\w+\s+)?$", re.I)

#: words that name a measure, not a thing to split by: "ranked by number sold", "top stores by amount spent"
MEASURE_WORDS = frozenset("number numbers count counts amount amounts total totals quantity quantities volume sum units unit dollars "
                          "value size spend spending".split())

#: words that start a breakdown, longest first: what follows names an attribute (or several)
BREAKDOWN_TRIGGERS: tuple[str, ...] = (
    "broken down by", "break it down by", "break that down by", "break this down by", "break down by",
    "breaking down by", "breakdown by", "broken out by", "break it out by", "break that out by", "break out by",
    "broke out by", "breakout by", "split it by", "split that by", "split by", "split into", "split across",
    "grouped by", "group by", "grouped per", "segmented by", "segment by", "bucketed by", "sliced by", "slice by",
    "organised by", "organized by", "arranged by", "sorted by", "ranked by", "ordered by",
    "for each", "for every", "for all", "in each", "within each", "of each", "of every", "per each",
    "by each", "by every", "across all", "across the", "across", "by", "per", "each", "every",
)
#: "cut three ways: A, B and C", "split 2 ways -", "cut by": a list of breakdowns follows
_WAYS = (r"(?:cut|split|sliced|broken\s+(?:down|out)|broke\s+(?:down|out))\s+(?:two|three|four|five|[2-5])\s+ways"
         r"(?:\s*(?::|-+|–|—))?", r"cut\s+by")
_TRIGGER_RE = re.compile(r"\b(" + "|".join([*_WAYS, *(re.escape(t) for t in BREAKDOWN_TRIGGERS)]) + r")(?:\b|(?<=[:\-–—]))",
                         re.I)


def breakdown_triggers(text: str) -> list[re.Match[str]]:
    """Where breakdowns start.

    >>> [m.group(1) for m in breakdown_triggers("revenue broken down by store, and for each month")]
    ['broken down by', 'for each']
    >>> [m.group(1) for m in breakdown_triggers("sales cut three ways: store, product and month")]
    ['cut three ways:']
    """
    return list(_TRIGGER_RE.finditer(text))


#: "all time", "ever", "to date": the whole history, no range
ALL_TIME_RE = re.compile(r"\b(all[\s-]time|of all time|since (?:the )?(?:beginning|start)|since forever|lifetime(?!\s+value)|"
                         r"from the (?:beginning|start))\b", re.I)
#: several values named as one group ("the UK, France and Germany combined"): no side-by-side breakdown
COMBINED_RE = re.compile(r"\b(combined|together|altogether|all together|in total|as a whole|in aggregate|summed|"
                         r"put together|total for|overall for|between (?:them|the two|both|the (?:two|three|four) of them))\b",
                         re.I)
#: past participles before "by" that make it the agent ("bought by returning customers"), not a breakdown
PARTICIPLE_RE = re.compile(r"^(?:\w+ed|spent|made|sold|bought|done|paid|seen|run|won|lost|sent|given|taken|written|"
                           r"driven|held|kept|brought|caught|built|read|heard)$", re.I)

#: phrases with "by" that start no breakdown
NOT_TRIGGERS_RE = re.compile(r"\b(side by side|one by one|step by step|little by little|bit by bit|case by case|"
                             r"by far|by the way|by hand|by then|by now|by default|by mistake)\b", re.I)
#: every row of an entity taken as one whole: "across all stores", "all shops together", "for all our customers
#: combined" (the noun is checked against the layer's entities)
ALL_OF_RE = re.compile(r"\b(?:(?:across|over|for|at|in|from)\s+)?all\s+(?:of\s+)?(?:the\s+|our\s+|my\s+)?(?P<noun>[a-z]+)"
                       r"(?P<whole>\s+(?:together|combined|altogether|in\s+total|as\s+a\s+whole))?", re.I)
#: a follow-up adding a breakdown: "add age band", "and include the store", "now by month"
ADD_BREAKDOWN_RE = re.compile(r"^\W*(?:and\s+|now\s+|then\s+|also\s+|please\s+|ok(?:ay)?,?\s+)*(?:add|include|plus|"
                              r"show|split|also)(?:\s+(?:the|a|an|in|it|that|this))?\b", re.I)
#: "rank the stores by ...", "sort our products", "compare the regions": what follows is broken down
RANK_LIST_RE = re.compile(r"\b(rank|ranking|sort|order|compare|list|show)\s+(?:(?:the|all|our|my|every|each|of)\s+)+",
                          re.I)
#: a superlative right before a noun ("the least popular drink", "our best-selling jaffle", "the biggest store")
SUPERLATIVE_RE = re.compile(r"\b(?:the\s+|our\s+|my\s+)?(?:most|least|best|worst|top|bottom|highest|lowest|biggest|"
                            r"smallest|largest)(?:[\s-]+(?:popular|selling|sold|ordered|expensive|profitable|"
                            r"performing|visited|used|loved|liked|rated))?\s+", re.I)
#: "how many people ...", "number of customers who ...": a count of distinct people
PEOPLE_COUNT_RE = re.compile(r"\b(how\s+many|number\s+of|count\s+of)\s+(?:unique\s+|distinct\s+|different\s+)?"
                             r"(people|persons|folks|users|customers|members|visitors|guests|players|viewers|accounts|"
                             r"subscribers|buyers|shoppers|clients|employees|ppl)\b", re.I)
#: adjectives that rank ("the most expensive stores", "our busiest products"): the ordering, not a name
RANK_ADJECTIVES = frozenset("""expensive cheap cheapest costly costliest popular unpopular busy busiest quiet quietest
    profitable unprofitable valuable big bigger biggest small smaller smallest large larger largest active
    successful strong stronger strongest weak weaker weakest fast faster fastest slow slower slowest frequent loyal
    good better great poor poorest high higher low lower heavy heaviest light lightest important top bottom""".split())

#: triggers after which the words are an ordering key, not a breakdown ("sorted by revenue")
ORDERING_TRIGGERS = frozenset({"sorted by", "ranked by", "ordered by"})

#: what joins the items of a breakdown list ("by store, customer id and month")
LIST_JOINERS = frozenset({",", "and", "&", "then", "plus", "by", "/", "as well as", "along with", "vs", "versus"})

#: words that end a breakdown item's phrase: what follows belongs to another part of the question
ITEM_STOPS = frozenset("""and or in on at for over during within with without where whose which that who when since
    from between last this next previous past only excluding except but to than of is are was were has have had did do
    does sorted ordered ranked top bottom vs versus then into plus as via""".split())

#: question words that ask for a breakdown when an attribute or entity follows ("which store ...")
WHICH_WORDS = frozenset({"which", "what", "whose"})

#: words that negate the value after them
NEGATION_RE = re.compile(
    r"\b(excluding|exclude|excludes|excluded|except|except for|not|not in|without|other than|apart from|besides|"
    r"but not|not including|minus|non|excl|outside|outside of|leaving out|leave out|leaves out|not counting|aside from|ignoring|"
    r"omitting|no|ex|ignore|drop|skip|skipping|w/o|\w+n[’']t)\W+((?:on|in|at|from|for|via|through|with|using|by|"
    r"of)\s+)?((the|all|any|our|those|these|a|an)\s+)?"
    # "leaving out the ones we denied", "except those that were cancelled": the value after a relative clause
    r"((?:ones?|those)\s+(?:(?:that|which|who)\s+)?(?:(?:we|they|you|i|it|were|was|are|is|got|get|have|had|been)\s+){0,2}"
    r"(?:(?:on|in|at|from|for|via|through|with|using|by|of)\s+)?)?$",
    re.I)

#: ranking words: the most / the least
MOST_RE = re.compile(r"\b(most|highest|largest|biggest|maximum|max|top|best|leading|greatest|more|busiest|"
                     r"strongest|popular|fastest|steepest|sharpest)\b", re.I)
#: bounds, not rankings: "at least one", "at most", "more than 5", "fewer than"
BOUNDS_RE = re.compile(r"\bat\s+(?:least|most)\b|\b(?:more|less|fewer)\s+than\b", re.I)
LEAST_RE = re.compile(r"\b(least|lowest|smallest|fewest|minimum|min|worst|bottom|less|weakest|slowest|quietest|"
                      r"unpopular)\b", re.I)
TOP_RE = re.compile(r"\b(top|bottom|best|worst|first|highest|lowest|largest|smallest|biggest|leading)\s+(\d{1,4}|"
                    + NUMBER_ALT + r")\b", re.I)
RANKED_RE = re.compile(r"\b(rank(ed|ing)?|sort(ed)?|order(ed)?|from highest|from lowest|descending|ascending|"
                       r"leaderboard)\b", re.I)
COMPARE_RE = re.compile(r"\b(vs\.?|versus|compare[ds]?|comparing|comparison|against|side by side|each of)\b", re.I)

#: words of a rise between two periods ("which branch grew most", "the biggest increase")
GROWTH_RE = re.compile(r"\b((?:go|goes|went|gone|going)\s+up|put(?:s|ting)?\s+on|pick(?:s|ed)?\s+up|extra|grow(?:s|n|ing|th)?|grew|add(?:s|ed)|increas(?:e|es|ed|ing)|gain(?:s|ed|ing)?|ris(?:e|es|en|ing)|rose|"
                       r"jump(?:s|ed)?|improv(?:e|es|ed|ement)|climb(?:s|ed)?|up(?:tick|swing))\b", re.I)
#: words of a fall between two periods ("which store fell most", "the biggest drop")
DECLINE_RE = re.compile(r"\b((?:go|goes|went|gone|going)\s+down|declin(?:e|es|ed|ing)|decreas(?:e|es|ed|ing)|drop(?:s|ped|ping)?|f[ae]ll(?:s|en|ing)?|"
                        r"shr[iau]nk(?:s|ing)?|lose|loses|losing|lost|slump(?:s|ed)?|worsen(?:s|ed)?|down(?:turn|swing))\b",
                        re.I)
#: a superlative next to a word of a rise or a fall, at most three words apart ("grew the most", "biggest drop",
#: "fastest growing", "grew their <metric> the most"): a ranking by the change, where "top 3 ... thinking of
#: dropping one" is none
_SUPERLATIVE = (r"(?:most|least|highest|lowest|largest|smallest|biggest|greatest|fastest|slowest|strongest|weakest|"
                r"steepest|sharpest|top|bottom|best|worst)")
_MOVE = (r"(?:(?:go|goes|went|gone|going)\s+(?:up|down)|put(?:s|ting)?\s+on|pick(?:s|ed)?\s+up|extra|grow(?:s|n|ing|th)?|grew|add(?:s|ed)|increas(?:e|es|ed|ing)|gain(?:s|ed|ing)?|ris(?:e|es|en|ing)|rose|jump(?:s|ed)?|"
         r"climb(?:s|ed)?|declin(?:e|es|ed|ing)|decreas(?:e|es|ed|ing)|drop(?:s|ped|ping)?|f[ae]ll(?:s|en|ing)?|"
         r"shr[iau]nk(?:s|ing)?|lose|loses|losing|lost|slump(?:s|ed)?)")
RANKED_CHANGE_RE = re.compile(rf"\b{_SUPERLATIVE}(?:\W+\w+){{0,3}}?\W+{_MOVE}\b|"
                              rf"\b{_MOVE}(?:\W+(?:their|its|his|her|our|your))?(?:\W+\w+){{0,3}}?\W+{_SUPERLATIVE}\b|"
                              rf"\b(?:by|on)\s+(?:the\s+)?(?:%\s*|percent(?:age)?\s+|relative\s+)?(?:{_SUPERLATIVE}\s+)?{_MOVE}\b", re.I)
#: one change named in the singular ("the biggest drop", "the largest increase"): the one row at the top
ONE_CHANGE_RE = re.compile(rf"\b{_SUPERLATIVE}\s+(?:single\s+)?(?:%\s*|percent(?:age)?\s+|relative\s+)?(?:drop|increase|decrease|decline|gain|rise|fall|jump|dip|"
                           rf"change|swing|grower|gainer|loser|faller)\b(?!\s+(?:in|of)\s+each)", re.I)
#: words of a change either way ("the biggest change", "swung most")
CHANGE_RE = re.compile(r"\b(chang(?:e|es|ed|ing)|swing|swung|moved?|shift(?:s|ed)?|difference|delta|varied)\b", re.I)
#: a superlative next to a change either way ("the biggest change", "moved the most")
RANKED_EITHER_RE = re.compile(rf"\b{_SUPERLATIVE}(?:\W+\w+){{0,2}}?\W+{CHANGE_RE.pattern[2:-2]}\b|"
                              rf"\b{CHANGE_RE.pattern[2:-2]}(?:\W+\w+){{0,2}}?\W+{_SUPERLATIVE}\b", re.I)
#: a change asked as a percentage ("fastest growing", "% growth", "in relative terms")
RELATIVE_CHANGE_RE = re.compile(r"%|\b(percent(?:age)?|pct|fastest|slowest|relative(?:ly)?|proportionally|rate)\b",
                                re.I)

#: "list the orders ...", "show me every customer ...", "which orders were refunded": rows, not a number
LISTING_RE = re.compile(r"^\W*(?:please\s+|can you\s+|could you\s+|would you\s+)?(?:list|enumerate|itemi[sz]e|"
                        r"show(?:\s+(?:me|us))?(?:\s+(?:all|every|each|the|our))|give\s+me\s+(?:a\s+list\s+of|all|every|the\s+list\s+of)|"
                        r"return\s+(?:all|every|each|the)|get\s+(?:me\s+)?(?:all|every)|what\s+are\s+the|which\s+are\s+the|"
                        r"name\s+(?:all|every|the)|pull\s+(?:up\s+|out\s+)?(?:all|every|each|the)|"
                        r"bring\s+up\s+(?:all|every|each|the)|fetch\s+(?:me\s+)?(?:all|every|each|the))\b", re.I)
#: a request for rows that cannot mean a number: "list the orders ...", "enumerate our stores", "give me a list of"
STRONG_LISTING_RE = re.compile(r"^\W*(?:please\s+|can you\s+|could you\s+|would you\s+)?(?:list|enumerate|"
                               r"itemi[sz]e|give\s+me\s+a\s+list\s+of|name\s+(?:all|every))\b", re.I)
#: the same requests at the start of any sentence ("Which shops haven't opened yet? List them with ...")
LISTING_ANY_RE = re.compile(r"(?:^|(?<=[.?!;]))" + LISTING_RE.pattern[1:], re.I)
STRONG_LISTING_ANY_RE = re.compile(r"(?:^|(?<=[.?!;]))" + STRONG_LISTING_RE.pattern[1:], re.I)
#: "... with their totals", "with its start and end date": the attributes a listing shows
WITH_ATTRIBUTES_RE = re.compile(r"(?:\b(?:with|and|including|plus|showing)|(?<=\s)[+&])\s+(?:their|its|the|his|her)\b",
                                re.I)

#: how a person asks for a count of things ("how many orders", "number of customers")
COUNT_CUE_RE = re.compile(r"\b(how\s+many|number\s+of|count\s+of|count|no\.\s+of|total\s+number\s+of)\b|#\s*of\b", re.I)

#: words naming an aggregation a governed total does not answer
INTENT_WORDS: dict[str, str] = {
    "average": "average", "avg": "average", "mean": "average", "median": "median", "percentile": "percentile",
    "p90": "90th percentile", "p95": "95th percentile", "p50": "median", "share": "share", "percentage": "percentage",
    "proportion": "proportion", "fraction": "fraction", "correlation": "correlation", "distribution": "distribution",
    "variance": "variance", "stddev": "standard deviation", "deviation": "standard deviation",
    "growth": "growth", "grew": "growth", "increase": "change", "decrease": "change", "change": "change",
    "changed": "change", "trend": "trend", "forecast": "forecast", "predict": "forecast", "projection": "forecast",
    "why": "cause", "cumulative": "running total", "running": "running total",
}

#: requests that are not analytics at all
CREATIVE_RE = re.compile(r"\b(poem|haiku|limerick|joke|jokes|story|stories|song|lyrics|essay|recipe|novel|"
                         r"(?:write|compose|draft|craft)\s+(?:me\s+|us\s+)?(?:an?\s+)?(?:tweet|post|caption|slogan)|capital of|who won|who is|who was|weather|horoscope|translate|meaning of life|"
                         r"write me a|tell me a)\b", re.I)

#: words a business person uses for a metric a layer could define (so an unknown one gets "which metric?")
BUSINESS_STEMS: frozenset[str] = _stems("""revenue revenues profit profits margin margins churn churned retention
    nps conversion conversions arpu arpa ltv clv cac lifetime refund refunded dau mau wau sales orders bookings subscribers subscriptions customers
    traffic clicks impressions ctr roi roas income earnings cost costs spend budget usage engagement kpi
    tickets refunds returns payments transactions inventory headcount salary salaries satisfaction rating ratings
    score scores uptime latency errors incidents downloads installs users accounts sessions hours minutes price prices
    pricing fee fees cpm wages rent labor labour payroll shipping delivery deliveries pickup utilization capacity
    attendance visits visitors leads pipeline quota bonus commission money takings""")

#: ordinary words that are never misspellings of a layer's vocabulary
KNOWN_WORDS: frozenset[str] = frozenset("""seller sellers bestseller bestsellers performer performers earner earners
    january february march april june july august september october november
    december monday tuesday wednesday thursday friday saturday sunday week weeks month months year years quarter
    quarters today yesterday last this next past previous since until before after between during within latest
    recent daily weekly monthly quarterly yearly annual annually over time trend trends versus compare comparison
    breakdown split each every which what where when while with without please thanks thank could would should
    might many much more most less least highest lowest largest smallest biggest best worst total average median
    share percent percentage people folks everyone anyone someone something anything nothing their there these
    those them then than that have been being does doing done show give tell list find make made look looking want
    need like know think ever single whole entire each other busiest grew grow grows grown growing growth increase
    increased increases decrease decreased decreases decline declined declines drop dropped drops fell fall falls
    fallen rose rise rises risen gain gained gains shrank shrunk jumped change changed changes fastest steepest
    sharpest charge charged charges chance chances chanced nearly dearly cunning dunning quartet mouths verses
    recline""".split())

#: short words that are also values somewhere (two-letter codes such as "hi" or "in"): values only in context
SHORT_WORDS = frozenset("hi a i in it is no or on at to id me be do go if of so up us we an as by my oh ok".split())

#: grain nouns and adjectives, for breakdown lists ("by store and month")
GRAIN_WORDS: dict[str, str] = {
    "day": "day", "days": "day", "daily": "day", "date": "day", "dates": "day",
    "week": "week", "weeks": "week", "weekly": "week",
    "month": "month", "months": "month", "monthly": "month",
    "quarter": "quarter", "quarters": "quarter", "quarterly": "quarter",
    "year": "year", "years": "year", "yearly": "year", "annually": "year", "annual": "year",
}

#: "X, which is A minus B", "X = A / B", "X (A - B)", "where X is A divided by B": an inline definition
DEFINITION_RE = re.compile(
    r"(?P<name>[A-Za-z][\w\s\-']{1,40}?)\s*(?:,\s*|\()?\s*(?:which\s+is|that\s+is|i\.?\s?e\.?,?|defined\s+as|"
    r"calculated\s+as|computed\s+as|meaning|=|:=|being|as\s+in)\s+(?P<expr>[^.;?!]+)", re.I)
#: the operators a definition may use, in words or signs
OPERATOR_WORDS: dict[str, str] = {
    "minus": "-", "less": "-", "-": "-", "plus": "+", "+": "+", "times": "*", "multiplied by": "*", "*": "*",
    "x": "*", "divided by": "/", "over": "/", "/": "/", "per": "/", "by": "/",
}

#: how people ask to change data, softly or not, at the start of a request (after "please", "can you"...)
SOFT_WRITE_RE = re.compile(
    r"^\W*(?:(?:please|pls|plz|kindly|can you|could you|would you|will you|can u|could u|would u|will u|"
    r"i want you to|i need you to|go ahead and|"
    r"let's|lets|now|ok|okay|also|and|then|quickly|just)\W+)*"
    r"(?P<verb>get rid of|clear out|clean up|clean out|tidy up|tidy|scrub|throw away|throw out|take out|"
    r"(?:clear|clean|throw|take|wipe|strip|rip)\s+(?:them|it|those|these|this|that|em)\s+out|wipe|purge|erase|delete|remove|"
    r"drop|truncate|insert|update|modify|edit|rename|merge|combine|dedupe|de-duplicate|deduplicate|overwrite|reset|"
    r"cancel|refund|archive|restore|create|add|assign|reassign|fix|backfill|upload|email|mail|send|export|"
    r"save|write|publish|void|replace|swap|bump|upgrade|downgrade|promote|demote|switch|set|change|move|"
    r"transfer|grant|revoke|ban|block|unblock|suspend|reactivate|deactivate|activate|zero\s+out|null\s+out|flip|toggle|"
    r"blank\s+out|mark|flag|correct|adjust|waive|reverse|undo|roll\s+back|rollback|credit|increase|decrease|raise|"
    r"reduce|put(?=\b.*\b(?:on|in|into|onto)\s+(?:the\s+|our\s+)?(?:menu|table|database|db|system|till|register|pos|"
    r"warehouse|records?)\b))\b(?P<object>.*)$", re.I)
#: a write verb used as a noun, naming a measure: "refund rate per month", "upload volume", "transfer fees by bank"
NOUN_USE_RE = re.compile(r"^\W*(?:rate|rates|ratio|ratios|count|counts|amount|amounts|totals|volume|volumes|"
                         r"share|shares|numbers|trend|trends|percent|percentage|fee|fees|size|sizes|frequency)\b"
                         r"(?!.*@)", re.I)
#: verbs that also edit the answer itself in a follow-up ("add month", "remove the filter"): a write only when
#: what follows names stored records
AMBIGUOUS_WRITE_VERBS = frozenset({"add", "remove", "drop", "take out", "replace", "swap", "combine", "update",
                                   "switch", "set", "change", "move", "bump", "upgrade", "downgrade", "promote",
                                   "demote", "transfer", "activate", "increase", "decrease", "raise", "reduce",
                                   "adjust", "correct", "mark", "flag", "reverse"})
#: further verbs that may edit the answer when what follows names a part of it ("delete the filter", "reset the
#: time range"); other write verbs ("refund", "cancel", "ban") never do
ANSWER_EDIT_VERBS = frozenset({"delete", "clear out", "get rid of", "reset", "edit", "modify", "save", "export"})
#: verbs that set a stored value when "... to X" follows ("update order 42 to refunded")
SETTING_VERBS = frozenset({"update", "change", "set", "move", "switch", "bump", "upgrade", "downgrade", "promote",
                           "demote", "transfer", "assign", "reassign", "rename", "increase", "decrease", "raise",
                           "reduce", "adjust", "correct", "mark", "flag"})
#: words that name stored records in a write request ("the test accounts", "those rows", "duplicate records")
RECORD_WORDS_RE = re.compile(r"\b(records?|rows?|entries|entry|data|table|tables|database|tests?\s+\w+|duplicat\w*|"
                             r"dupes?|everything|all\s+of\s+them|fake|bogus|junk|spam|invalid|corrupt\w*|\d{3,}|"
                             r"(?:a|an)\s+new)\b", re.I)
#: what a follow-up may add, remove or change without changing data ("remove the filter", "add a breakdown")
EDIT_OBJECTS_RE = re.compile(r"^\W*(?:the\s+|a\s+|an\s+|that\s+|this\s+|my\s+)?(?:filter|filters|breakdown|breakdowns|"
                             r"dimension|dimensions|grouping|split|limit|top|sort|sorting|order|ordering|chart|graph|"
                             r"time|period|range|grain|column|columns|metric|metrics|comparison|condition|total|"
                             r"totals|percent|percentage|labels?|legend|axis)\b", re.I)

#: a negation said after the values: "leave brooklyn out", "with the test stores excluded", "chicago aside"
NEGATED_AFTER_RE = re.compile(r"^[\s,]*(?:(?P<out>out)|excluded|aside|removed|left\s+out|not\s+included|"
                              r"not\s+counted|ignored)\b", re.I)
