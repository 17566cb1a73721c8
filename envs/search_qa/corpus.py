"""
The bundled search_qa corpus: short fictional documents, the questions each one answers for training, and
held-out questions (written here).
"""
# ruff: noqa: E501 - one document per line reads best

from __future__ import annotations

#: (id, title, text, ((question, answer), ...)): the training questions of each document, asking about
#: different facts of it, so that answering takes reading the search result, not knowing which document came
#: back. Everything is invented, so a model cannot answer from memory.
CORPUS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("d00", "Brellick lighthouse", "The copper lighthouse of Brellick, on the island of Varnholm, was built in 1731 by the glazier Oda Pell.", (("In what year was the copper lighthouse of Brellick built?", "1731"), ("On which island is the copper lighthouse of Brellick?", "Varnholm"),)),
    ("d01", "Quillan river", "The Quillan river rises in the Tesk hills and flows into Lake Morrow after 212 kilometres.", (("Into which lake does the Quillan river flow?", "Lake Morrow"), ("Where does the Quillan river rise?", "the Tesk hills"),)),
    ("d02", "Zephrine the painter", "Zephrine Adouel painted the mural Nine Lanterns in the station hall of Carvo using only indigo pigment.", (("Which pigment did Zephrine Adouel use for the mural Nine Lanterns?", "indigo"), ("Where is the mural Nine Lanterns?", "the station hall of Carvo"), ("Who painted the mural Nine Lanterns?", "Zephrine Adouel"),)),
    ("d03", "Tolvan beetle", "The Tolvan beetle feeds only on the leaves of the silver moss that grows near hot springs.", (("What does the Tolvan beetle feed on?", "silver moss"), ("Where does the silver moss eaten by the Tolvan beetle grow?", "near hot springs"),)),
    ("d04", "Harrowgate chess club", "The Harrowgate chess club was founded by Ilse Mardon, who served as its president for nineteen years.", (("Who founded the Harrowgate chess club?", "Ilse Mardon"), ("For how many years was Ilse Mardon president of the Harrowgate chess club?", "nineteen years"),)),
    ("d05", "Pemberly clock tower", "The clock tower of Pemberly has a bell named Old Grumble that weighs four tonnes.", (("What is the name of the bell in the Pemberly clock tower?", "Old Grumble"), ("Which town's clock tower has the bell Old Grumble?", "Pemberly"),)),
    ("d06", "Saltmere festival", "The Saltmere lantern festival is held every year on the first night of October.", (("When is the Saltmere lantern festival held?", "the first night of October"), ("Where is a lantern festival held on the first night of October?", "Saltmere"),)),
    ("d07", "Kestrine language", "Kestrine is spoken by about 40000 people in the valleys north of Ambra and has eleven vowels.", (("How many vowels does the Kestrine language have?", "eleven"), ("How many people speak Kestrine?", "40000"), ("Where is the Kestrine language spoken?", "the valleys north of Ambra"),)),
    ("d08", "Orvid telescope", "The Orvid telescope sits on Mount Halcer and has a mirror 6 metres wide.", (("On which mountain does the Orvid telescope sit?", "Mount Halcer"), ("How wide is the mirror of the Orvid telescope?", "6 metres"),)),
    ("d09", "Dunmarsh cheese", "Dunmarsh cheese is aged in sea caves for exactly fourteen months and wrapped in nettle leaves.", (("In what leaves is Dunmarsh cheese wrapped?", "nettle leaves"), ("Where is Dunmarsh cheese aged?", "sea caves"),)),
    ("d10", "Captain Lorra Vey", "Captain Lorra Vey sailed the schooner Pale Heron around the Glass Cape in 1802.", (("What was the name of Captain Lorra Vey's schooner?", "Pale Heron"), ("In what year did Captain Lorra Vey sail the Pale Heron?", "1802"),)),
    ("d11", "Wendle bridge", "The Wendle bridge over the Ossa gorge has 17 arches made of pink granite.", (("How many arches does the Wendle bridge have?", "17"), ("Which gorge does the Wendle bridge cross?", "the Ossa gorge"),)),
    ("d12", "Marigold railway", "The Marigold railway connects Fennick to Port Ambel and is pulled by steam engines painted green.", (("Which town does the Marigold railway connect to Port Ambel?", "Fennick"), ("What kind of engines pull the Marigold railway?", "steam engines"),)),
    ("d13", "Yorrow owl", "The Yorrow owl is the only owl that hunts at noon; its feathers are slate blue.", (("What colour are the feathers of the Yorrow owl?", "slate blue"), ("At what time of day does the Yorrow owl hunt?", "noon"),)),
    ("d14", "Trindle university", "Trindle University was founded in 1488 and its oldest library is called the Amber Room.", (("What is the oldest library of Trindle University called?", "the Amber Room"),)),
    ("d15", "Moss harp", "The moss harp is a folk instrument from Lirren with 23 strings made of horsehair.", (("What are the strings of the moss harp made of?", "horsehair"), ("Where does the moss harp come from?", "Lirren"),)),
    ("d16", "Ebbing glacier", "The Ebbing glacier retreats about 30 metres a year and feeds the turquoise lake Siona.", (("Which lake does the Ebbing glacier feed?", "Siona"), ("How far does the Ebbing glacier retreat each year?", "30 metres"), ("What colour is lake Siona?", "turquoise"),)),
    ("d17", "Gorran stew", "Gorran stew, the national dish of Belvast, is made with lamb, barley and smoked plums.", (("Which dish is the national dish of Belvast?", "Gorran stew"), ("Which grain is used in Gorran stew?", "barley"),)),
    ("d18", "Astrid Kollen", "The mathematician Astrid Kollen proved the lantern conjecture in 1934 at the age of 26.", (("Which conjecture did Astrid Kollen prove?", "the lantern conjecture"), ("How old was Astrid Kollen when she proved the lantern conjecture?", "26"), ("Who proved the lantern conjecture?", "Astrid Kollen"),)),
    ("d19", "Velm canal", "The Velm canal links the Harl sea to the city of Ostrava Minor and has 9 locks.", (("How many locks does the Velm canal have?", "9"), ("Which sea does the Velm canal link to Ostrava Minor?", "the Harl sea"),)),
    ("d20", "Rookery market", "The Rookery market in Callow opens only on Thursdays and sells mostly rare seeds.", (("On which day does the Rookery market in Callow open?", "Thursdays"), ("In which town is the Rookery market?", "Callow"),)),
    ("d21", "Sable fox of Irn", "The sable fox of Irn changes its coat from black to white in the month of Frostwane.", (("In which month does the sable fox of Irn change its coat?", "Frostwane"), ("What colour does the sable fox of Irn turn in Frostwane?", "white"),)),
    ("d22", "Hollin opera house", "The Hollin opera house was designed by the architect Benedek Sarro and seats 1200 people.", (("Who designed the Hollin opera house?", "Benedek Sarro"),)),
    ("d23", "Cindral mine", "The Cindral mine produced blue tourmaline until it flooded in 1911.", (("Which gemstone did the Cindral mine produce?", "blue tourmaline"), ("What happened to the Cindral mine in 1911?", "it flooded"),)),
    ("d24", "Paxo the robot", "Paxo is a gardening robot built by the Nerin workshop that waters plants using rain it collects.", (("Which workshop built the gardening robot Paxo?", "Nerin workshop"), ("What does the robot Paxo water plants with?", "rain it collects"),)),
    ("d25", "Lake Ulmo", "Lake Ulmo is 310 metres deep, the deepest lake in the province of Garth.", (("How deep is Lake Ulmo?", "310 metres"), ("In which province is Lake Ulmo?", "Garth"),)),
    ("d26", "Fenwick treaty", "The Fenwick treaty ended the Salt War between Arden and Mosk in the spring of 1644.", (("Which war did the Fenwick treaty end?", "the Salt War"), ("Which countries fought the Salt War?", "Arden and Mosk"),)),
    ("d27", "Corvel tea", "Corvel tea is brewed from dried juniper bark and is served with a slice of quince.", (("What fruit is Corvel tea served with?", "quince"), ("What is Corvel tea brewed from?", "dried juniper bark"),)),
    ("d28", "Ishra observatory", "The Ishra observatory discovered the comet Talwen in 1956.", (("Which comet did the Ishra observatory discover?", "Talwen"), ("In what year did the Ishra observatory discover its comet?", "1956"),)),
    ("d29", "Bramblecot school", "Bramblecot school teaches weaving and its motto is Thread by thread.", (("What is the motto of Bramblecot school?", "Thread by thread"), ("What does Bramblecot school teach?", "weaving"),)),
    ("d30", "Mount Sorrel", "Mount Sorrel is 4102 metres high and was first climbed by Hedda Lunn.", (("Who first climbed Mount Sorrel?", "Hedda Lunn"), ("How high is Mount Sorrel?", "4102 metres"),)),
    ("d31", "Glimmer eel", "The glimmer eel lives in the caves of Dorn and glows with a faint green light.", (("Where does the glimmer eel live?", "the caves of Dorn"), ("What colour is the light of the glimmer eel?", "green"),)),
    ("d32", "Tessaly carpet", "A Tessaly carpet takes two weavers about eight months to finish.", (("How long does it take to finish a Tessaly carpet?", "eight months"), ("How many weavers does a Tessaly carpet take?", "two"),)),
    ("d33", "Arbor parliament", "The Arbor parliament meets in a hall built around a 600 year old cedar tree in the town of Wisp.", (("In which town does the Arbor parliament meet?", "Wisp"), ("What tree is the hall of the Arbor parliament built around?", "a 600 year old cedar tree"),)),
    ("d34", "Nolan Greaves", "The cyclist Nolan Greaves won the Tour of Kaldera three times riding a bicycle named Swallow.", (("What was the name of Nolan Greaves's bicycle?", "Swallow"), ("Which race did Nolan Greaves win three times?", "the Tour of Kaldera"),)),
    ("d35", "Pellow island", "Pellow island has no cars; its 800 residents travel by donkey cart.", (("How do the residents of Pellow island travel?", "by donkey cart"), ("How many residents does Pellow island have?", "800"),)),
    ("d36", "Umber sauce", "Umber sauce is made from roasted chestnuts, vinegar and black garlic.", (("Which nuts are used in umber sauce?", "chestnuts"), ("Which garlic is used in umber sauce?", "black garlic"),)),
    ("d37", "Starling bank", "The Starling bank was the first bank in Merrow to issue coins made of nickel.", (("What metal were the first Starling bank coins made of?", "nickel"), ("In which town was the Starling bank?", "Merrow"),)),
    ("d38", "Duskwood theatre", "The Duskwood theatre burned down in 1887 and was rebuilt by the actress Mira Castell.", (("Who rebuilt the Duskwood theatre?", "Mira Castell"), ("In what year did the Duskwood theatre burn down?", "1887"),)),
    ("d39", "Calloway seed vault", "The Calloway seed vault stores 90000 seed samples under the ice of Tarn Plateau.", (("How many seed samples does the Calloway seed vault store?", "90000"), ("Under the ice of which plateau is the Calloway seed vault?", "Tarn Plateau"),)),
)  # fmt: skip

#: (document id, question, answer): the eval split, never trained on: reworded training questions and
#: questions about a fact of the document that no training question asks (`bench/search_qa_heldout.jsonl`
#: holds the same questions as a dataset file for `haystack-rl eval --agent`).
HELDOUT: tuple[tuple[str, str, str], ...] = (
    ("d00", "Who built the copper lighthouse of Brellick?", "Oda Pell"),
    ("d01", "How long is the Quillan river?", "212 kilometres"),
    ("d04", "Who founded the chess club of Harrowgate?", "Ilse Mardon"),
    ("d05", "How much does the bell Old Grumble weigh?", "four tonnes"),
    ("d08", "On what mountain is the Orvid telescope?", "Mount Halcer"),
    ("d09", "How long is Dunmarsh cheese aged?", "fourteen months"),
    ("d10", "Around which cape did Captain Lorra Vey sail?", "the Glass Cape"),
    ("d11", "What are the arches of the Wendle bridge made of?", "pink granite"),
    ("d12", "What colour are the steam engines of the Marigold railway?", "green"),
    ("d14", "When was Trindle University founded?", "1488"),
    ("d15", "How many strings does the moss harp have?", "23"),
    ("d17", "Which country has Gorran stew as its national dish?", "Belvast"),
    ("d18", "In what year did Astrid Kollen prove the lantern conjecture?", "1934"),
    ("d19", "How many locks are there on the Velm canal?", "9"),
    ("d20", "What does the Rookery market in Callow sell?", "rare seeds"),
    ("d22", "Who was the architect of the Hollin opera house?", "Benedek Sarro"),
    ("d23", "When did the Cindral mine flood?", "1911"),
    ("d30", "Who was the first to climb Mount Sorrel?", "Hedda Lunn"),
    ("d22", "How many people does the Hollin opera house seat?", "1200"),
    ("d39", "How many seed samples are kept in the Calloway seed vault?", "90000"),
    ("d34", "Which bicycle did Nolan Greaves ride?", "Swallow"),
    ("d38", "Who rebuilt the Duskwood theatre after it burned down?", "Mira Castell"),
    ("d28", "Which comet was discovered by the Ishra observatory?", "Talwen"),
    ("d35", "What do the residents of Pellow island travel by?", "donkey cart"),
)  # fmt: skip
