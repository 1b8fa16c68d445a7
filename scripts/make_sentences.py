#!/usr/bin/env python3
"""Generate the sample-corpus sentence lists `pipeline/langs/<ll>/sentences.txt` from small template
grammars (vocabulary written for this project), deterministically.

    python scripts/make_sentences.py            # all languages, default counts
    python scripts/make_sentences.py fr --count 2500

Every sentence has 3-12 words, no digits, and after lowercasing and dropping . , ; ! ? only
characters of the pack's alphabet.txt (checked here, so the importers keep every sentence).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

LANGS_DIR = Path(__file__).resolve().parent.parent / "pipeline" / "langs"
COUNTS = {"fr": 2500, "it": 1500, "en": 1500}
PUNCT = ".,;!?"


def parse(block: str) -> list[list[str]]:
    """One entry a line, fields separated by '|', surrounding spaces ignored."""
    return [[f.strip() for f in line.split("|")] for line in block.strip().splitlines() if line.strip()]


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


# ==================================================================================================
# French
# ==================================================================================================
FR_AGENTS = parse("""
homme|m|hommes
femme|f|femmes
enfant|m|enfants
garçon|m|garçons
fille|f|filles
voisin|m|voisins
voisine|f|voisines
boulanger|m|boulangers
boulangère|f|boulangères
médecin|m|médecins
facteur|m|facteurs
professeur|m|professeurs
chat|m|chats
chien|m|chiens
oiseau|m|oiseaux
cheval|m|chevaux
renard|m|renards
lapin|m|lapins
vache|f|vaches
mouton|m|moutons
poule|f|poules
canard|m|canards
grenouille|f|grenouilles
tortue|f|tortues
abeille|f|abeilles
élève|m|élèves
ami|m|amis
amie|f|amies
frère|m|frères
sœur|f|sœurs
oncle|m|oncles
tante|f|tantes
cuisinier|m|cuisiniers
jardinier|m|jardiniers
pêcheur|m|pêcheurs
marin|m|marins
pilote|m|pilotes
peintre|m|peintres
musicien|m|musiciens
chanteuse|f|chanteuses
étudiant|m|étudiants
étudiante|f|étudiantes
vendeur|m|vendeurs
ouvrier|m|ouvriers
infirmière|f|infirmières
directrice|f|directrices
écrivain|m|écrivains
sorcière|f|sorcières
roi|m|rois
reine|f|reines
prince|m|princes
princesse|f|princesses
loup|m|loups
ours|m|ours
éléphant|m|éléphants
singe|m|singes
baleine|f|baleines
dauphin|m|dauphins
papillon|m|papillons
écureuil|m|écureuils
voyageur|m|voyageurs
gardien|m|gardiens
bergère|f|bergères
meunier|m|meuniers
capitaine|m|capitaines
""")
FR_THINGS = parse("""
livre|m|livres
lettre|f|lettres
pomme|f|pommes
poire|f|poires
orange|f|oranges
gâteau|m|gâteaux
pain|m|pains
fromage|m|fromages
soupe|f|soupes
tasse|f|tasses
verre|m|verres
assiette|f|assiettes
bouteille|f|bouteilles
chaise|f|chaises
table|f|tables
lampe|f|lampes
clé|f|clés
sac|m|sacs
chapeau|m|chapeaux
manteau|m|manteaux
chaussure|f|chaussures
robe|f|robes
chemise|f|chemises
parapluie|m|parapluies
vélo|m|vélos
voiture|f|voitures
bateau|m|bateaux
valise|f|valises
carte|f|cartes
journal|m|journaux
crayon|m|crayons
cahier|m|cahiers
tableau|m|tableaux
photo|f|photos
fleur|f|fleurs
branche|f|branches
feuille|f|feuilles
pierre|f|pierres
caillou|m|cailloux
boîte|f|boîtes
panier|m|paniers
couteau|m|couteaux
fourchette|f|fourchettes
cuillère|f|cuillères
miroir|m|miroirs
horloge|f|horloges
montre|f|montres
téléphone|m|téléphones
ordinateur|m|ordinateurs
radio|f|radios
guitare|f|guitares
piano|m|pianos
tambour|m|tambours
ballon|m|ballons
poupée|f|poupées
jouet|m|jouets
bougie|f|bougies
couverture|f|couvertures
oreiller|m|oreillers
œuf|m|œufs
cerise|f|cerises
fraise|f|fraises
citron|m|citrons
tomate|f|tomates
carotte|f|carottes
salade|f|salades
confiture|f|confitures
tarte|f|tartes
bouquet|m|bouquets
cadeau|m|cadeaux
enveloppe|f|enveloppes
échelle|f|échelles
marteau|m|marteaux
corde|f|cordes
seau|m|seaux
filet|m|filets
lanterne|f|lanternes
écharpe|f|écharpes
gant|m|gants
bijou|m|bijoux
collier|m|colliers
trésor|m|trésors
coffre|m|coffres
dessin|m|dessins
chanson|f|chansons
histoire|f|histoires
message|m|messages
billet|m|billets
ticket|m|tickets
plume|f|plumes
fusée|f|fusées
""")
FR_PLACES = parse("""
maison|f|maisons
cuisine|f|cuisines
jardin|m|jardins
forêt|f|forêts
rivière|f|rivières
plage|f|plages
montagne|f|montagnes
village|m|villages
ville|f|villes
marché|m|marchés
école|f|écoles
église|f|églises
gare|f|gares
port|m|ports
bibliothèque|f|bibliothèques
musée|m|musées
parc|m|parcs
rue|f|rues
pont|m|ponts
champ|m|champs
lac|m|lacs
île|f|îles
château|m|châteaux
grenier|m|greniers
cave|f|caves
salon|m|salons
chambre|f|chambres
bureau|m|bureaux
boulangerie|f|boulangeries
pharmacie|f|pharmacies
hôpital|m|hôpitaux
ferme|f|fermes
prairie|f|prairies
colline|f|collines
océan|m|océans
étang|m|étangs
quai|m|quais
couloir|m|couloirs
atelier|m|ateliers
vallée|f|vallées
""")
# adjective: masculine | feminine | placed before the noun (pre) or after (post)
FR_ADJ = parse("""
petit|petite|pre
grand|grande|pre
gros|grosse|pre
bon|bonne|pre
jeune|jeune|pre
joli|jolie|pre
mauvais|mauvaise|pre
rouge|rouge|post
bleu|bleue|post
vert|verte|post
jaune|jaune|post
noir|noire|post
blanc|blanche|post
gris|grise|post
rond|ronde|post
carré|carrée|post
lourd|lourde|post
léger|légère|post
froid|froide|post
chaud|chaude|post
propre|propre|post
sale|sale|post
ancien|ancienne|post
moderne|moderne|post
brillant|brillante|post
étrange|étrange|post
immense|immense|post
minuscule|minuscule|post
fragile|fragile|post
tranquille|tranquille|post
heureux|heureuse|post
curieux|curieuse|post
fatigué|fatiguée|post
content|contente|post
doré|dorée|post
sucré|sucrée|post
mûr|mûre|post
vide|vide|post
plein|pleine|post
fermé|fermée|post
ouvert|ouverte|post
cassé|cassée|post
mouillé|mouillée|post
sec|sèche|post
neuf|neuve|post
timide|timide|post
bavard|bavarde|post
gentil|gentille|post
sérieux|sérieuse|post
pressé|pressée|post
élégant|élégante|post
sombre|sombre|post
lumineux|lumineuse|post
silencieux|silencieuse|post
""")
# infinitive | present 3sg | present 3pl | past participle
FR_VT = parse("""
manger|mange|mangent|mangé
regarder|regarde|regardent|regardé
chercher|cherche|cherchent|cherché
trouver|trouve|trouvent|trouvé
porter|porte|portent|porté
aimer|aime|aiment|aimé
préparer|prépare|préparent|préparé
acheter|achète|achètent|acheté
vendre|vend|vendent|vendu
prendre|prend|prennent|pris
ouvrir|ouvre|ouvrent|ouvert
fermer|ferme|ferment|fermé
laver|lave|lavent|lavé
réparer|répare|réparent|réparé
dessiner|dessine|dessinent|dessiné
peindre|peint|peignent|peint
lire|lit|lisent|lu
écrire|écrit|écrivent|écrit
choisir|choisit|choisissent|choisi
attendre|attend|attendent|attendu
voir|voit|voient|vu
garder|garde|gardent|gardé
cacher|cache|cachent|caché
oublier|oublie|oublient|oublié
ranger|range|rangent|rangé
perdre|perd|perdent|perdu
casser|casse|cassent|cassé
remplir|remplit|remplissent|rempli
nettoyer|nettoie|nettoient|nettoyé
construire|construit|construisent|construit
rencontrer|rencontre|rencontrent|rencontré
tenir|tient|tiennent|tenu
jeter|jette|jettent|jeté
montrer|montre|montrent|montré
emporter|emporte|emportent|emporté
envoyer|envoie|envoient|envoyé
recevoir|reçoit|reçoivent|reçu
couper|coupe|coupent|coupé
plier|plie|plient|plié
vider|vide|vident|vidé
décorer|décore|décorent|décoré
protéger|protège|protègent|protégé
admirer|admire|admirent|admiré
compter|compte|comptent|compté
apporter|apporte|apportent|apporté
pousser|pousse|poussent|poussé
tirer|tire|tirent|tiré
suivre|suit|suivent|suivi
découvrir|découvre|découvrent|découvert
offrir|offre|offrent|offert
rendre|rend|rendent|rendu
goûter|goûte|goûtent|goûté
""")
FR_VI = parse("""
dormir|dort|dorment
chanter|chante|chantent
danser|danse|dansent
travailler|travaille|travaillent
marcher|marche|marchent
courir|court|courent
nager|nage|nagent
rire|rit|rient
pleurer|pleure|pleurent
jouer|joue|jouent
sourire|sourit|sourient
réfléchir|réfléchit|réfléchissent
crier|crie|crient
voyager|voyage|voyagent
grandir|grandit|grandissent
attendre|attend|attendent
se reposer|se repose|se reposent
se promener|se promène|se promènent
rêver|rêve|rêvent
siffler|siffle|sifflent
bavarder|bavarde|bavardent
patiner|patine|patinent
""")
FR_WHEN = parse("""
hier
demain
ce matin
ce soir
souvent
parfois
toujours
encore
tous les jours
le dimanche
le lundi
en hiver
au printemps
en été
en automne
à midi
la nuit
avant le dîner
après le déjeuner
dans une heure
depuis longtemps
""")
FR_HOW = parse("""
lentement
vite
doucement
ensemble
tranquillement
sans bruit
avec soin
en silence
de bonne humeur
sans se presser
""")
FR_NAMES = [x[0] for x in parse("""
Marie
Paul
Lucie
Julien
Camille
Hélène
Émile
Chloé
Léon
Margot
Antoine
Zoé
Benoît
Inès
Gaston
Noémie
""")]
FR_CITIES = [x[0] for x in parse("""
Paris
Lyon
Marseille
Nantes
Bordeaux
Toulouse
Lille
Rennes
Grenoble
Dijon
Brest
Nice
""")]
FR_PREP = ["dans", "sur", "sous", "devant", "derrière", "près de", "à côté de", "au bord de", "loin de",
           "vers", "à", "autour de", "au fond de", "au milieu de"]
FR_FIXED = [
    "Quelle belle journée !", "Il fait froid ce matin.", "Il pleut depuis hier soir.",
    "Le vent souffle sur la colline.", "La neige tombe doucement.",
    "Le soleil se couche derrière la montagne.",
    "Nous partons en vacances demain.", "Je ne sais pas où il est.", "Tu veux du thé ou du café ?",
    "Elle a oublié son parapluie.", "On se retrouve devant la gare.", "Quel temps fait il aujourd'hui ?",
    "J'ai faim et j'ai soif.", "C'est une excellente idée.", "Attends moi, j'arrive !",
    "Le train part à midi.", "Ferme la fenêtre, s'il te plaît.", "Merci beaucoup pour ton aide.",
    "Où as tu mis les clés ?", "Le ciel est gris, il va pleuvoir.",
]

VOWELS = "aeiouyàâäéèêëîïôöœùûüh"


def fr_starts_vowel(word: str) -> bool:
    return word[:1].lower() in VOWELS


def fr_plural_adj(adj: str) -> str:
    if adj[-1] in "sx":
        return adj
    if adj.endswith("eau"):
        return adj + "x"
    return adj + "s"


class French:
    def __init__(self, rng: random.Random):
        self.r = rng

    def noun_phrase(self, pool: list[list[str]], plural: bool | None = None, det: str | None = None,
                    adj_p: float = 0.45) -> tuple[str, bool, str]:
        """(text, plural, gender) of a determiner + noun (+ adjective)."""
        r = self.r
        word, gender, pl = r.choice(pool)
        if plural is None:
            plural = r.random() < 0.3
        noun = pl if plural else word
        pre = post = ""
        if r.random() < adj_p:
            m, f, pos = r.choice(FR_ADJ)
            a = m if gender == "m" else f
            if plural:
                a = fr_plural_adj(a)
            if pos == "pre":
                pre = a
            else:
                post = a
        first = pre or noun
        det = det or r.choice(["def", "def", "def", "indef", "indef", "poss", "dem"])
        if det == "def":
            d = "les" if plural else ("l'" if fr_starts_vowel(first) else ("le" if gender == "m" else "la"))
        elif det == "indef":
            d = "des" if plural else ("un" if gender == "m" else "une")
            if plural and pre:
                d = "de"
        elif det == "poss":
            p = r.choice([("mon", "ma", "mes"), ("ton", "ta", "tes"), ("son", "sa", "ses"),
                          ("notre", "notre", "nos"), ("votre", "votre", "vos"), ("leur", "leur", "leurs")])
            d = p[2] if plural else (p[0] if gender == "m" or fr_starts_vowel(first) else p[1])
        else:
            masc = "cet" if fr_starts_vowel(first) else "ce"
            d = "ces" if plural else (masc if gender == "m" else "cette")
        words = [d, pre, noun, post]
        text = " ".join(w for w in words if w)
        text = text.replace("' ", "'")
        return text, plural, gender

    def prep_phrase(self) -> str:
        r = self.r
        prep = r.choice(FR_PREP)
        if prep == "à" and r.random() < 0.3:
            return "à " + r.choice(FR_CITIES)
        np_, _, _ = self.noun_phrase(FR_PLACES, det=r.choice(["def", "def", "indef", "poss"]), adj_p=0.25)
        text = f"{prep} {np_}"
        for a, b in (("de le ", "du "), ("de les ", "des "), ("à le ", "au "), ("à les ", "aux ")):
            if text.startswith(a) or (" " + a) in text:
                text = text.replace(a, b, 1)
        return text.replace("de des ", "de ").replace("de de ", "de ").replace("' ", "'")

    def subject(self) -> tuple[str, bool]:
        r = self.r
        x = r.random()
        if x < 0.15:
            return r.choice(FR_NAMES), False
        if x < 0.25:
            return r.choice(["il", "elle", "on", "ils", "elles"]), None  # type: ignore[return-value]
        text, plural, _ = self.noun_phrase(FR_AGENTS, det=r.choice(["def", "def", "indef", "poss", "dem"]))
        return text, plural

    def elide(self, text: str) -> str:
        text = re.sub(r"\b(ne|que|je|de|se|le|la) ([aeiouyàâéèêîôœh])", r"\1'\2", text)
        text = text.replace("la'", "l'").replace("le'", "l'").replace("ne'", "n'").replace("que'", "qu'")
        text = text.replace("je'", "j'").replace("de'", "d'").replace("se'", "s'")
        return text

    def sentence(self) -> str:
        r = self.r
        x = r.random()
        if x < 0.03:
            return r.choice(FR_FIXED)
        subj, plural = self.subject()
        if plural is None:
            plural = subj in ("ils", "elles")
        k = 2 if plural else 1
        obj, _, _ = self.noun_phrase(FR_THINGS)
        vt = r.choice(FR_VT)
        vi = r.choice(FR_VI)
        t = r.random()
        if t < 0.30:
            core = f"{subj} {vt[k]} {obj}"
        elif t < 0.45:
            aux = "ont" if plural else "a"
            core = f"{subj} {aux} {vt[3]} {obj}"
        elif t < 0.55:
            aux = "vont" if plural else "va"
            core = f"{subj} {aux} {vt[0]} {obj}"
        elif t < 0.63:
            core = f"{subj} ne {vt[k]} pas {obj}"
        elif t < 0.80:
            core = f"{subj} {vi[k]}"
        elif t < 0.88:
            pron, aux = r.choice([("je", "vais"), ("tu", "vas"), ("nous", "allons"), ("vous", "allez")])
            inf = r.choice([vt[0] + " " + obj, vi[0]])
            refl = {"je": "me ", "tu": "te ", "nous": "nous ", "vous": "vous "}[pron]
            core = f"{pron} {aux} {inf.replace('se ', refl, 1) if inf.startswith('se ') else inf}"
        elif t < 0.94:
            pron, aux = r.choice([("je", "ai"), ("tu", "as"), ("nous", "avons"), ("vous", "avez")])
            core = f"{pron} {aux} {vt[3]} {obj}"
        else:
            q = r.choice(["pourquoi", "quand", "comment"])
            text = f"{q} {subj} {vt[k]} {obj} ?"
            return cap(self.elide(text))
        extra = []
        if r.random() < 0.5:
            extra.append(self.prep_phrase())
        if r.random() < 0.25:
            extra.append(r.choice(FR_HOW)[0])
        text = " ".join([core, *extra])
        if r.random() < 0.25:
            when = r.choice(FR_WHEN)[0]
            text = f"{when}, {text}" if r.random() < 0.5 else f"{text} {when}"
        text = self.elide(text)
        end = "." if r.random() < 0.92 else " !"
        return cap(text) + end


# ==================================================================================================
# Italian
# ==================================================================================================
# singular | plural | gender
IT_AGENTS = parse("""
uomo|uomini|m
donna|donne|f
bambino|bambini|m
bambina|bambine|f
ragazzo|ragazzi|m
ragazza|ragazze|f
vicino|vicini|m
vicina|vicine|f
fornaio|fornai|m
medico|medici|m
postino|postini|m
maestro|maestri|m
maestra|maestre|f
gatto|gatti|m
cane|cani|m
uccello|uccelli|m
cavallo|cavalli|m
volpe|volpi|f
coniglio|conigli|m
mucca|mucche|f
pecora|pecore|f
gallina|galline|f
anatra|anatre|f
rana|rane|f
tartaruga|tartarughe|f
ape|api|f
studente|studenti|m
studentessa|studentesse|f
amico|amici|m
amica|amiche|f
fratello|fratelli|m
sorella|sorelle|f
zio|zii|m
zia|zie|f
cuoco|cuochi|m
giardiniere|giardinieri|m
pescatore|pescatori|m
marinaio|marinai|m
pittore|pittori|m
musicista|musicisti|m
cantante|cantanti|f
venditore|venditori|m
operaio|operai|m
infermiera|infermiere|f
scrittore|scrittori|m
strega|streghe|f
re|re|m
regina|regine|f
principe|principi|m
principessa|principesse|f
lupo|lupi|m
orso|orsi|m
elefante|elefanti|m
scimmia|scimmie|f
balena|balene|f
delfino|delfini|m
farfalla|farfalle|f
scoiattolo|scoiattoli|m
viaggiatore|viaggiatori|m
pastore|pastori|m
capitano|capitani|m
""")
IT_THINGS = parse("""
libro|libri|m
lettera|lettere|f
mela|mele|f
pera|pere|f
arancia|arance|f
torta|torte|f
pane|pani|m
formaggio|formaggi|m
zuppa|zuppe|f
tazza|tazze|f
bicchiere|bicchieri|m
piatto|piatti|m
bottiglia|bottiglie|f
sedia|sedie|f
tavolo|tavoli|m
lampada|lampade|f
chiave|chiavi|f
borsa|borse|f
cappello|cappelli|m
cappotto|cappotti|m
scarpa|scarpe|f
vestito|vestiti|m
camicia|camicie|f
ombrello|ombrelli|m
bicicletta|biciclette|f
macchina|macchine|f
barca|barche|f
valigia|valigie|f
mappa|mappe|f
giornale|giornali|m
matita|matite|f
quaderno|quaderni|m
quadro|quadri|m
fotografia|fotografie|f
fiore|fiori|m
ramo|rami|m
foglia|foglie|f
pietra|pietre|f
scatola|scatole|f
cestino|cestini|m
coltello|coltelli|m
forchetta|forchette|f
cucchiaio|cucchiai|m
specchio|specchi|m
orologio|orologi|m
telefono|telefoni|m
computer|computer|m
radio|radio|f
chitarra|chitarre|f
pianoforte|pianoforti|m
tamburo|tamburi|m
pallone|palloni|m
bambola|bambole|f
giocattolo|giocattoli|m
candela|candele|f
coperta|coperte|f
cuscino|cuscini|m
uovo|uova|f
ciliegia|ciliegie|f
fragola|fragole|f
limone|limoni|m
pomodoro|pomodori|m
carota|carote|f
insalata|insalate|f
marmellata|marmellate|f
regalo|regali|m
busta|buste|f
scala|scale|f
martello|martelli|m
corda|corde|f
secchio|secchi|m
lanterna|lanterne|f
sciarpa|sciarpe|f
guanto|guanti|m
gioiello|gioielli|m
collana|collane|f
tesoro|tesori|m
disegno|disegni|m
canzone|canzoni|f
storia|storie|f
messaggio|messaggi|m
biglietto|biglietti|m
piuma|piume|f
zaino|zaini|m
spazzolino|spazzolini|m
""")
IT_PLACES = parse("""
casa|case|f
cucina|cucine|f
giardino|giardini|m
bosco|boschi|m
fiume|fiumi|m
spiaggia|spiagge|f
montagna|montagne|f
villaggio|villaggi|m
città|città|f
mercato|mercati|m
scuola|scuole|f
chiesa|chiese|f
stazione|stazioni|f
porto|porti|m
biblioteca|biblioteche|f
museo|musei|m
parco|parchi|m
strada|strade|f
ponte|ponti|m
campo|campi|m
lago|laghi|m
isola|isole|f
castello|castelli|m
soffitta|soffitte|f
cantina|cantine|f
salotto|salotti|m
camera|camere|f
ufficio|uffici|m
panetteria|panetterie|f
farmacia|farmacie|f
ospedale|ospedali|m
fattoria|fattorie|f
prato|prati|m
collina|colline|f
oceano|oceani|m
stagno|stagni|m
piazza|piazze|f
officina|officine|f
valle|valli|f
""")
# adjective stem class: "o" (rosso/rossa/rossi/rosse) or "e" (verde/verdi); invariable: "inv"
IT_ADJ = parse("""
piccol|o
grand|e
ross|o
azzurr|o
verd|e
giall|o
ner|o
bianc|o
grigi|o
rotond|o
pesant|e
legger|o
fredd|o
cald|o
pulit|o
sporc|o
antic|o
modern|o
brillant|e
stran|o
enorm|e
minuscol|o
fragil|e
tranquill|o
felic|e
curios|o
stanc|o
content|o
dorat|o
dolc|e
matur|o
vuot|o
pien|o
chius|o
apert|o
rott|o
bagnat|o
asciutt|o
nuov|o
timid|o
gentil|e
seri|o
elegant|e
scur|o
luminos|o
silenzios|o
vecchi|o
giovan|e
bell|o
""")
# infinitive | present 3sg | present 3pl | past participle (with avere)
IT_VT = parse("""
mangiare|mangia|mangiano|mangiato
guardare|guarda|guardano|guardato
cercare|cerca|cercano|cercato
trovare|trova|trovano|trovato
portare|porta|portano|portato
amare|ama|amano|amato
preparare|prepara|preparano|preparato
comprare|compra|comprano|comprato
vendere|vende|vendono|venduto
prendere|prende|prendono|preso
aprire|apre|aprono|aperto
chiudere|chiude|chiudono|chiuso
lavare|lava|lavano|lavato
riparare|ripara|riparano|riparato
disegnare|disegna|disegnano|disegnato
dipingere|dipinge|dipingono|dipinto
leggere|legge|leggono|letto
scrivere|scrive|scrivono|scritto
scegliere|sceglie|scelgono|scelto
aspettare|aspetta|aspettano|aspettato
vedere|vede|vedono|visto
tenere|tiene|tengono|tenuto
nascondere|nasconde|nascondono|nascosto
dimenticare|dimentica|dimenticano|dimenticato
perdere|perde|perdono|perso
rompere|rompe|rompono|rotto
riempire|riempie|riempiono|riempito
pulire|pulisce|puliscono|pulito
costruire|costruisce|costruiscono|costruito
incontrare|incontra|incontrano|incontrato
mostrare|mostra|mostrano|mostrato
spedire|spedisce|spediscono|spedito
ricevere|riceve|ricevono|ricevuto
tagliare|taglia|tagliano|tagliato
piegare|piega|piegano|piegato
decorare|decora|decorano|decorato
proteggere|protegge|proteggono|protetto
ammirare|ammira|ammirano|ammirato
contare|conta|contano|contato
spingere|spinge|spingono|spinto
tirare|tira|tirano|tirato
seguire|segue|seguono|seguito
scoprire|scopre|scoprono|scoperto
offrire|offre|offrono|offerto
assaggiare|assaggia|assaggiano|assaggiato
raccogliere|raccoglie|raccolgono|raccolto
""")
IT_VI = parse("""
dormire|dorme|dormono
cantare|canta|cantano
ballare|balla|ballano
lavorare|lavora|lavorano
camminare|cammina|camminano
correre|corre|corrono
nuotare|nuota|nuotano
ridere|ride|ridono
piangere|piange|piangono
giocare|gioca|giocano
sorridere|sorride|sorridono
riflettere|riflette|riflettono
gridare|grida|gridano
viaggiare|viaggia|viaggiano
aspettare|aspetta|aspettano
riposare|riposa|riposano
sognare|sogna|sognano
fischiare|fischia|fischiano
chiacchierare|chiacchiera|chiacchierano
pattinare|pattina|pattinano
""")
IT_WHEN = ["ieri", "domani", "stamattina", "stasera", "spesso", "a volte", "sempre", "ancora", "ogni giorno",
           "la domenica", "il lunedì", "d'inverno", "in primavera", "d'estate", "in autunno",
           "a mezzogiorno", "di notte", "prima di cena", "dopo pranzo", "fra un'ora", "da molto tempo",
           "venerdì sera", "già"]
IT_HOW = ["lentamente", "in fretta", "piano", "insieme", "tranquillamente", "senza rumore", "con cura",
          "in silenzio", "di buon umore", "senza fretta", "così"]
IT_NAMES = ["Maria", "Paolo", "Lucia", "Giulio", "Chiara", "Elena", "Matteo", "Francesca", "Luca",
            "Giorgia", "Antonio", "Sofia", "Nicolò", "Bianca", "Tommaso", "Irene"]
IT_CITIES = ["Roma", "Milano", "Napoli", "Torino", "Firenze", "Venezia", "Bologna", "Genova", "Palermo",
             "Bari", "Verona", "Trieste"]
# preposition that contracts with the article, or a plain one
IT_PREP = ["in", "su", "a", "da", "di fronte", "vicino", "accanto", "dietro", "sotto", "sopra",
           "lontano", "verso", "intorno", "in mezzo"]
IT_FIXED = [
    "Che bella giornata!", "Fa freddo stamattina.", "Piove da ieri sera.", "Il vento soffia sulla collina.",
    "La neve cade piano.", "Il sole tramonta dietro la montagna.", "Domani partiamo per le vacanze.",
    "Non so dove sia.", "Vuoi un tè o un caffè?", "Ci vediamo davanti alla stazione.",
    "Che tempo fa oggi?", "Ho fame e ho sete.", "È un'ottima idea.", "Aspettami, arrivo subito!",
    "Il treno parte a mezzogiorno.", "Chiudi la finestra, per favore.", "Grazie mille per l'aiuto.",
    "Dove hai messo le chiavi?", "Il cielo è grigio, pioverà presto.", "Perché non vieni con noi?",
]
IT_VOWELS = "aeiouàèéìíòóù"
IT_POSS = [("mio", "mia", "miei", "mie"), ("tuo", "tua", "tuoi", "tue"), ("suo", "sua", "suoi", "sue"),
           ("nostro", "nostra", "nostri", "nostre"), ("vostro", "vostra", "vostri", "vostre")]
IT_FAMILY = {"fratello", "sorella", "zio", "zia"}


def it_lo(word: str) -> bool:
    """Words that take lo/gli/uno: s + consonant, z, gn, ps, x, y."""
    w = word.lower()
    return (w[:1] == "s" and len(w) > 1 and w[1] not in IT_VOWELS) or w[:1] in "zxy" or w[:2] in ("gn", "ps")


def it_def_article(word: str, gender: str, plural: bool) -> str:
    v = word[:1].lower() in IT_VOWELS
    if gender == "m":
        if plural:
            return "gli" if v or it_lo(word) else "i"
        return "l'" if v else ("lo" if it_lo(word) else "il")
    if plural:
        return "le"
    return "l'" if v else "la"


IT_CONTRACT = {
    prep: dict(zip(("il", "lo", "la", "l'", "i", "gli", "le"), forms.split(), strict=True))
    for prep, forms in (("di", "del dello della dell' dei degli delle"),
                        ("a", "al allo alla all' ai agli alle"),
                        ("da", "dal dallo dalla dall' dai dagli dalle"),
                        ("in", "nel nello nella nell' nei negli nelle"),
                        ("su", "sul sullo sulla sull' sui sugli sulle"))
}


def it_adj(stem: str, cls: str, gender: str, plural: bool) -> str:
    if cls == "e":
        return stem + ("i" if plural else "e")
    end = {("m", False): "o", ("f", False): "a", ("m", True): "i", ("f", True): "e"}[(gender, plural)]
    if plural and stem.endswith(("c", "g")) and gender == "f":
        return stem + "he"
    if plural and stem.endswith(("c", "g")) and gender == "m":
        return stem + "hi"
    if plural and stem.endswith("i") and end == "i":
        return stem
    return stem + end


class Italian:
    def __init__(self, rng: random.Random):
        self.r = rng

    def noun_phrase(self, pool: list[list[str]], plural: bool | None = None, det: str | None = None,
                    adj_p: float = 0.45) -> tuple[str, bool, str, str]:
        """(text, plural, gender, definite-article-or-'') of a determiner + noun (+ adjective)."""
        r = self.r
        sg, pl, gender = r.choice(pool)
        if plural is None:
            plural = r.random() < 0.3
        noun = pl if plural else sg
        if sg == "uovo" and plural:
            gender = "f"
        elif sg == "uovo":
            gender = "m"
        adj = ""
        if r.random() < adj_p:
            stem, cls = r.choice(IT_ADJ)
            adj = it_adj(stem, cls, gender, plural)
        det = det or r.choice(["def", "def", "def", "indef", "poss", "dem"])
        art = ""
        if det == "def":
            art = it_def_article(noun, gender, plural)
            text = f"{art} {noun}"
        elif det == "indef":
            if plural and gender == "f":
                d = "delle"
            elif plural:
                d = "degli" if noun[0] in IT_VOWELS or it_lo(noun) else "dei"
            elif gender == "m":
                d = "uno" if it_lo(noun) else "un"
            else:
                d = "un'" if noun[0] in IT_VOWELS else "una"
            text = f"{d} {noun}"
        elif det == "poss":
            forms = r.choice(IT_POSS)
            pf = forms[(2 if plural else 0) + (gender == "f")]
            art = it_def_article(pf, gender, plural)
            # singular relatives take no article: "mia sorella", "suo zio"
            text = f"{pf} {noun}" if sg in IT_FAMILY and not plural else f"{art} {pf} {noun}"
            art = ""
        else:
            base = r.choice(["quest", "quell"])
            if base == "quest":
                d = it_adj("quest", "o", gender, plural)
                if not plural and noun[0] in IT_VOWELS:
                    d = "quest'"
            else:
                d = {("m", False): "quel", ("f", False): "quella", ("m", True): "quei",
                     ("f", True): "quelle"}[(gender, plural)]
                if noun[0] in IT_VOWELS:
                    d = "quell'" if not plural else ("quegli" if gender == "m" else "quelle")
                elif gender == "m" and it_lo(noun):
                    d = "quello" if not plural else "quegli"
            text = f"{d} {noun}"
        if adj:
            text += " " + adj
        return text.replace("' ", "'"), plural, gender, art

    def prep_phrase(self) -> str:
        r = self.r
        prep = r.choice(IT_PREP)
        if prep in ("a", "in") and r.random() < 0.3:
            return f"a {r.choice(IT_CITIES)}"
        np_, _, _, art = self.noun_phrase(IT_PLACES, det="def", adj_p=0.25)
        rest = np_[len(art):].lstrip()
        link = {"di fronte": "a", "vicino": "a", "accanto": "a", "lontano": "da", "intorno": "a",
                "in mezzo": "a", "dietro": "", "sotto": "", "sopra": "", "verso": ""}
        if prep in IT_CONTRACT:
            return (IT_CONTRACT[prep][art] + " " + rest).replace("' ", "'")
        if link[prep]:
            return (f"{prep} " + IT_CONTRACT[link[prep]][art] + " " + rest).replace("' ", "'")
        return f"{prep} {np_}"

    def subject(self) -> tuple[str, bool]:
        r = self.r
        x = r.random()
        if x < 0.15:
            return r.choice(IT_NAMES), False
        text, plural, _, _ = self.noun_phrase(IT_AGENTS, det=r.choice(["def", "def", "indef", "poss", "dem"]))
        return text, plural

    def sentence(self) -> str:
        r = self.r
        if r.random() < 0.03:
            return r.choice(IT_FIXED)
        subj, plural = self.subject()
        k = 2 if plural else 1
        obj, _, _, _ = self.noun_phrase(IT_THINGS)
        vt = r.choice(IT_VT)
        vi = r.choice(IT_VI)
        t = r.random()
        if t < 0.32:
            core = f"{subj} {vt[k]} {obj}"
        elif t < 0.48:
            core = f"{subj} {'hanno' if plural else 'ha'} {vt[3]} {obj}"
        elif t < 0.56:
            core = f"{subj} non {vt[k]} {obj}"
        elif t < 0.74:
            core = f"{subj} {vi[k]}"
        elif t < 0.82:
            pron, aux = r.choice([("io", "voglio"), ("tu", "vuoi"), ("noi", "vogliamo"), ("voi", "volete")])
            core = f"{pron} {aux} {r.choice([vt[0] + ' ' + obj, vi[0]])}"
        elif t < 0.90:
            aux = r.choice(["ho", "hai", "abbiamo", "avete"])
            core = f"{aux} {vt[3]} {obj}"
        else:
            q = r.choice(["perché", "quando", "come", "dove"])
            return cap(f"{q} {subj} {vt[k]} {obj}?")
        extra = []
        if r.random() < 0.5:
            extra.append(self.prep_phrase())
        if r.random() < 0.25:
            extra.append(r.choice(IT_HOW))
        text = " ".join([core, *extra])
        if r.random() < 0.25:
            when = r.choice(IT_WHEN)
            text = f"{when}, {text}" if r.random() < 0.5 else f"{text} {when}"
        return cap(text) + ("." if r.random() < 0.92 else "!")


# ==================================================================================================
# English
# ==================================================================================================
# singular | plural
EN_AGENTS = parse("""
man|men
woman|women
child|children
boy|boys
girl|girls
neighbour|neighbours
baker|bakers
doctor|doctors
postman|postmen
teacher|teachers
cat|cats
dog|dogs
bird|birds
horse|horses
fox|foxes
rabbit|rabbits
cow|cows
sheep|sheep
hen|hens
duck|ducks
frog|frogs
turtle|turtles
bee|bees
student|students
friend|friends
brother|brothers
sister|sisters
uncle|uncles
aunt|aunts
cook|cooks
gardener|gardeners
fisherman|fishermen
sailor|sailors
pilot|pilots
painter|painters
musician|musicians
singer|singers
farmer|farmers
nurse|nurses
writer|writers
witch|witches
king|kings
queen|queens
prince|princes
princess|princesses
wolf|wolves
bear|bears
elephant|elephants
monkey|monkeys
whale|whales
dolphin|dolphins
butterfly|butterflies
squirrel|squirrels
traveller|travellers
shepherd|shepherds
captain|captains
mouse|mice
owl|owls
""")
EN_THINGS = parse("""
book|books
letter|letters
apple|apples
pear|pears
orange|oranges
cake|cakes
loaf|loaves
cheese|cheeses
cup|cups
glass|glasses
plate|plates
bottle|bottles
chair|chairs
table|tables
lamp|lamps
key|keys
bag|bags
hat|hats
coat|coats
shoe|shoes
dress|dresses
shirt|shirts
umbrella|umbrellas
bicycle|bicycles
car|cars
boat|boats
suitcase|suitcases
map|maps
newspaper|newspapers
pencil|pencils
notebook|notebooks
painting|paintings
photograph|photographs
flower|flowers
branch|branches
leaf|leaves
stone|stones
box|boxes
basket|baskets
knife|knives
fork|forks
spoon|spoons
mirror|mirrors
clock|clocks
watch|watches
phone|phones
computer|computers
radio|radios
guitar|guitars
piano|pianos
drum|drums
ball|balls
doll|dolls
toy|toys
candle|candles
blanket|blankets
pillow|pillows
egg|eggs
cherry|cherries
strawberry|strawberries
lemon|lemons
tomato|tomatoes
carrot|carrots
sandwich|sandwiches
present|presents
envelope|envelopes
ladder|ladders
hammer|hammers
rope|ropes
bucket|buckets
lantern|lanterns
scarf|scarves
glove|gloves
necklace|necklaces
treasure|treasures
drawing|drawings
song|songs
story|stories
message|messages
ticket|tickets
feather|feathers
kite|kites
jar|jars
""")
EN_PLACES = parse("""
house
kitchen
garden
forest
river
beach
mountain
village
town
market
school
church
station
harbour
library
museum
park
street
bridge
field
lake
island
castle
attic
cellar
living room
bedroom
office
bakery
pharmacy
hospital
farm
meadow
hill
ocean
pond
square
workshop
valley
""")
EN_ADJ = ["small", "big", "little", "old", "new", "young", "pretty", "red", "blue", "green", "yellow",
          "black", "white", "grey", "round", "square", "heavy", "light", "cold", "warm", "clean", "dirty",
          "ancient", "modern", "shiny", "strange", "huge", "tiny", "fragile", "quiet", "happy", "curious",
          "tired", "golden", "sweet", "ripe", "empty", "full", "broken", "wet", "dry", "shy", "gentle",
          "serious", "elegant", "dark", "bright", "silent", "lazy", "clever", "wooden", "brave", "noisy"]
# base | 3sg | past
EN_VT = parse("""
eat|eats|ate
watch|watches|watched
find|finds|found
carry|carries|carried
love|loves|loved
prepare|prepares|prepared
buy|buys|bought
sell|sells|sold
take|takes|took
open|opens|opened
close|closes|closed
wash|washes|washed
repair|repairs|repaired
draw|draws|drew
paint|paints|painted
read|reads|read
write|writes|wrote
choose|chooses|chose
see|sees|saw
keep|keeps|kept
hide|hides|hid
forget|forgets|forgot
lose|loses|lost
break|breaks|broke
fill|fills|filled
clean|cleans|cleaned
build|builds|built
hold|holds|held
throw|throws|threw
show|shows|showed
send|sends|sent
receive|receives|received
cut|cuts|cut
fold|folds|folded
empty|empties|emptied
decorate|decorates|decorated
protect|protects|protected
admire|admires|admired
count|counts|counted
bring|brings|brought
push|pushes|pushed
pull|pulls|pulled
follow|follows|followed
discover|discovers|discovered
offer|offers|offered
taste|tastes|tasted
catch|catches|caught
borrow|borrows|borrowed
""")
EN_VI = parse("""
sleep|sleeps|slept
sing|sings|sang
dance|dances|danced
work|works|worked
walk|walks|walked
run|runs|ran
swim|swims|swam
laugh|laughs|laughed
cry|cries|cried
play|plays|played
smile|smiles|smiled
think|thinks|thought
shout|shouts|shouted
travel|travels|travelled
wait|waits|waited
rest|rests|rested
dream|dreams|dreamed
whistle|whistles|whistled
chat|chats|chatted
skate|skates|skated
""")
EN_WHEN = ["yesterday", "tomorrow", "this morning", "this evening", "often", "sometimes", "always",
           "again", "every day", "on Sunday", "on Monday", "in winter", "in spring", "in summer",
           "in autumn", "at noon", "at night", "before dinner", "after lunch", "in an hour",
           "for a long time"]
EN_HOW = ["slowly", "quickly", "quietly", "together", "calmly", "without a sound", "with care", "in silence",
          "cheerfully", "without hurrying", "carefully"]
EN_NAMES = ["Mary", "Paul", "Lucy", "Julian", "Emma", "Helen", "Oliver", "Grace", "Leo", "Sophie", "Thomas",
            "Alice", "Henry", "Rose", "Daniel", "Ruth"]
EN_CITIES = ["London", "Leeds", "Bristol", "Dublin", "Boston", "Chicago", "Denver", "Glasgow", "Oxford",
             "Cardiff", "Seattle", "Toronto"]
EN_PREP = ["in", "on", "under", "near", "behind", "in front of", "next to", "far from", "towards", "around",
           "at", "inside", "outside", "beside"]
EN_FIXED = [
    "What a lovely day!", "It is cold this morning.", "It has been raining since last night.",
    "The wind blows over the hill.", "The snow falls softly.", "The sun sets behind the mountain.",
    "We are leaving on holiday tomorrow.", "I don't know where he is.", "Would you like tea or coffee?",
    "Let's meet in front of the station.", "What's the weather like today?", "I'm hungry and thirsty.",
    "That's an excellent idea.", "Wait for me, I'm coming!", "The train leaves at noon.",
    "Close the window, please.", "Thank you so much for your help.", "Where did you put the keys?",
    "The sky is grey, it's going to rain.", "Why don't you come with us?",
]


class English:
    def __init__(self, rng: random.Random):
        self.r = rng

    def noun_phrase(self, pool: list[list[str]], plural: bool | None = None, det: str | None = None,
                    adj_p: float = 0.45) -> tuple[str, bool]:
        r = self.r
        entry = r.choice(pool)
        if plural is None:
            plural = r.random() < 0.3 and len(entry) > 1
        noun = entry[1] if plural else entry[0]
        words = [noun]
        if r.random() < adj_p:
            words.insert(0, r.choice(EN_ADJ))
        det = det or r.choice(["def", "def", "def", "indef", "poss", "dem"])
        if det == "def":
            d = "the"
        elif det == "indef":
            d = r.choice(["some", "two", "three", "a few"]) if plural else (
                "an" if words[0][0] in "aeiou" else "a")
        elif det == "poss":
            d = r.choice(["my", "your", "his", "her", "our", "their"])
        else:
            d = ("these" if r.random() < 0.5 else "those") if plural else r.choice(["this", "that"])
        return " ".join([d, *words]), plural

    def subject(self) -> tuple[str, bool]:
        r = self.r
        if r.random() < 0.15:
            return r.choice(EN_NAMES), False
        return self.noun_phrase(EN_AGENTS)

    def prep_phrase(self) -> str:
        r = self.r
        prep = r.choice(EN_PREP)
        if prep == "in" and r.random() < 0.3:
            return f"in {r.choice(EN_CITIES)}"
        np_, _ = self.noun_phrase(EN_PLACES, det=r.choice(["def", "def", "indef", "poss"]), adj_p=0.25)
        return f"{prep} {np_}"

    def sentence(self) -> str:
        r = self.r
        if r.random() < 0.03:
            return r.choice(EN_FIXED)
        subj, plural = self.subject()
        obj, _ = self.noun_phrase(EN_THINGS)
        vt, vi = r.choice(EN_VT), r.choice(EN_VI)
        t = r.random()
        if t < 0.25:
            core = f"{subj} {vt[0] if plural else vt[1]} {obj}"
        elif t < 0.45:
            core = f"{subj} {vt[2]} {obj}"
        elif t < 0.53:
            core = f"{subj} {r.choice(['will', 'can', 'must', 'might'])} {vt[0]} {obj}"
        elif t < 0.62:
            neg = r.choice(["don't", "do not"] if plural else ["doesn't", "does not"] + ["didn't"])
            core = f"{subj} {neg} {vt[0]} {obj}"
        elif t < 0.80:
            core = f"{subj} {r.choice([vi[0] if plural else vi[1], vi[2]])}"
        elif t < 0.90:
            pron = r.choice(["I", "you", "we", "they"])
            core = f"{pron} {r.choice(['want to', 'have to', 'would like to', 'forgot to'])} " \
                   f"{r.choice([vt[0] + ' ' + obj, vi[0]])}"
        else:
            q = r.choice(["why", "when", "how", "where"])
            return cap(f"{q} did {subj} {vt[0]} {obj}?")
        extra = []
        if r.random() < 0.5:
            extra.append(self.prep_phrase())
        if r.random() < 0.25:
            extra.append(r.choice(EN_HOW))
        text = " ".join([core, *extra])
        if r.random() < 0.25:
            when = r.choice(EN_WHEN)
            text = f"{when}, {text}" if r.random() < 0.5 else f"{text} {when}"
        return cap(text) + ("." if r.random() < 0.92 else "!")


GRAMMARS: dict[str, Callable[[random.Random], French | Italian | English]] = {
    "fr": French, "it": Italian, "en": English}


def load_alphabet(lang: str) -> set[str]:
    labels = set()
    for line in (LANGS_DIR / lang / "alphabet.txt").read_text(encoding="utf-8").splitlines():
        if line == "\\#":
            labels.add("#")
        elif line and not line.startswith("#"):
            labels.add(line)
    return labels


def check(sentence: str, alphabet: set[str]) -> str | None:
    """Why `sentence` is unfit, or None."""
    words = sentence.split()
    if not 3 <= len(words) <= 12:
        return f"{len(words)} words"
    if any(ch.isdigit() for ch in sentence):
        return "digit"
    bad = {ch for ch in sentence.lower() if ch not in alphabet and ch not in PUNCT}
    return f"characters {sorted(bad)}" if bad else None


def generate(lang: str, count: int, seed: int = 20240601) -> list[str]:
    rng = random.Random(f"{lang}-{seed}")
    grammar = GRAMMARS[lang](rng)
    alphabet = load_alphabet(lang)
    out: dict[str, None] = {}
    tries = 0
    while len(out) < count:
        tries += 1
        if tries > count * 50:
            raise SystemExit(f"{lang}: only {len(out)} distinct sentences after {tries} tries")
        s = re.sub(r"\s+", " ", grammar.sentence()).strip()
        why = check(s, alphabet)
        if why is None:
            out.setdefault(s, None)
        elif why.startswith("characters"):
            raise SystemExit(f"{lang}: grammar produced {s!r}: {why}")
    return list(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("langs", nargs="*", default=sorted(GRAMMARS))
    ap.add_argument("--count", type=int, default=0, help="sentences per language (default: per language)")
    args = ap.parse_args(argv)
    for lang in args.langs:
        sentences = generate(lang, args.count or COUNTS[lang])
        path = LANGS_DIR / lang / "sentences.txt"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        tmp.replace(path)
        vocab = {w.strip(PUNCT).lower() for s in sentences for w in s.split()}
        print(f"{path}: {len(sentences)} sentences, {len(vocab)} distinct words", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
